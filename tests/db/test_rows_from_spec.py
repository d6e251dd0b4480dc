"""Pending node rows built from the typed definition of the execution's own version, on SQLite and PostgreSQL
(the fast tier: the session's migrated database, each test in a transaction rolled back after it)."""

from __future__ import annotations

import pytest

from maestro_dagster.db import RepositoryFactory
from maestro_dagster.db.models import NodeState
from maestro_dagster.db.repositories import DefinitionRecord
from maestro_dagster.errors import DefinitionError
from maestro_dagster.spec.models import DEFAULT_QUALITY_THRESHOLD, WorkflowSpec

EDGES = [{"source": "a", "target": "b"}]


def _record(max_attempts: int, content_hash: str, nodes: dict | None = None) -> DefinitionRecord:
    nodes = nodes or {"a": {}, "b": {"retry_policy": {"max_attempts": 2, "retry_on_failure": True}}}
    document = {
        "id": "versioned",
        "nodes": nodes,
        "edges": EDGES,
        "defaults": {"retry_policy": {"max_attempts": max_attempts, "retry_on_failure": True}},
    }
    return DefinitionRecord(
        id="versioned", name="versioned", nodes=nodes, edges=EDGES, definition=document, content_hash=content_hash
    )


def _states(session, execution_id: str) -> dict[str, NodeState]:
    return {s.node_id: s for s in RepositoryFactory(session).node_state.get_by_execution(execution_id)}


def test_max_retries_come_from_the_executions_version_not_the_latest(fast_db):
    with fast_db.scope() as session:
        repos = RepositoryFactory(session)
        repos.workflow.create(_record(3, "v1"))
        first = repos.execution.create("versioned").id
    with fast_db.scope() as session:
        repos = RepositoryFactory(session)
        row, changed = repos.workflow.create(_record(5, "v2"))
        assert (row.version, changed) == (2, True)
        # the v1 execution's rows (re)built after v2 was stored, as the mirror builds them for a late run
        v1, v1_states = repos.execution.new_rows("versioned", execution_id="versioned-late", workflow_version=1)
        assert v1.workflow_version == 1
        assert {v["node_id"]: v["max_retries"] for v in v1_states} == {"a": 2, "b": 1}
        latest = repos.execution.create("versioned")
        assert latest.workflow_version == 2
    with fast_db.scope() as session:
        assert {k: s.max_retries for k, s in _states(session, first).items()} == {"a": 2, "b": 1}
        assert {k: s.max_retries for k, s in _states(session, latest.id).items()} == {"a": 4, "b": 1}


def test_a_null_quality_threshold_gets_the_default(fast_db):
    nodes = {"a": {"quality_threshold": None}, "b": {"quality_threshold": 0.9}}
    with fast_db.scope() as session:
        repos = RepositoryFactory(session)
        repos.workflow.create(_record(1, "q", nodes=nodes))
        execution_id = repos.execution.create("versioned").id
        # the values the mirror's fresh path inserts as they are (a Core upsert: no column default applies)
        _, values = repos.execution.new_rows("versioned", execution_id="versioned-fresh")
        assert {v["node_id"]: v["quality_threshold"] for v in values} == {"a": DEFAULT_QUALITY_THRESHOLD, "b": 0.9}
    with fast_db.scope() as session:
        states = _states(session, execution_id)
        assert states["a"].quality_threshold == pytest.approx(DEFAULT_QUALITY_THRESHOLD)
        assert states["b"].quality_threshold == pytest.approx(0.9)


def test_the_default_threshold_is_declared_in_the_spec():
    spec = WorkflowSpec.from_storage({"id": "w", "nodes": {"a": {}, "b": {"quality_threshold": 0.25}}})
    assert DEFAULT_QUALITY_THRESHOLD == 0.7  # docs/schema.md
    assert spec.nodes["a"].effective_quality_threshold == DEFAULT_QUALITY_THRESHOLD
    assert spec.nodes["b"].effective_quality_threshold == 0.25
    assert spec.nodes["a"].quality_threshold is None  # the stored form (and its content hash) is unchanged


def test_a_version_that_is_not_a_definition_has_no_execution(db_session):
    repos = RepositoryFactory(db_session)
    repos.workflow.create(_record(1, "bad", nodes={"a": {"type": "no_such_type"}}))
    with pytest.raises(DefinitionError, match="version 1 is not a valid definition"):
        repos.execution.create("versioned")
