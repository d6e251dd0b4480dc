"""Migration 0004 with rows present, on SQLite and PostgreSQL: artifact rows per run, node_states brought in line.

Rows as the earlier mirror wrote them (written with today's models, then the schema taken back to 0003): a
completed node keeping an earlier attempt's error and Dagster's step time as its duration, a failed node. After the
upgrade the completed node has no error and ``duration_seconds = completed_at - started_at``; the failed node keeps
its error. Two runs may then record the same path of a node; the downgrade keeps the latest of them and restores
the single-row constraint.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from maestro_dagster.db import NodeStatus, RepositoryFactory, get_db, migrate
from maestro_dagster.db.models import Artifact, NodeState
from maestro_dagster.db.repositories import DefinitionRecord

T0 = datetime(2026, 11, 30, 9, 0, 0, 123456, tzinfo=UTC)
NODES = {"done": {"name": "done"}, "broke": {"name": "broke"}}


def _execution(settings) -> str:
    definition = {"id": "wf", "nodes": NODES, "edges": []}
    record = DefinitionRecord(id="wf", name="wf", nodes=NODES, edges=[], definition=definition, content_hash="h")
    with get_db(settings) as session:
        repos = RepositoryFactory(session)
        repos.workflow.create(record)
        execution_id = repos.execution.create("wf", {}).id
        states = {s.node_id: s for s in session.scalars(select(NodeState).filter_by(execution_id=execution_id))}
        done, broke = states["done"], states["broke"]
        done.status, done.started_at, done.completed_at = NodeStatus.COMPLETED, T0, T0 + timedelta(seconds=2.5)
        done.duration_seconds, done.error_message, done.error_type = 1.75, "attempt 1 failed", "RuntimeError"
        broke.status, broke.started_at, broke.completed_at = NodeStatus.FAILED, T0, T0 + timedelta(seconds=1)
        broke.duration_seconds, broke.error_message, broke.error_type = 1.0, "broke", "RuntimeError"
    return execution_id


def _artifact(settings, execution_id: str, run_id: str, sha: str, created: datetime) -> None:
    with get_db(settings) as session:
        row = Artifact(execution_id=execution_id, node_id="done", name="out.txt", file_path="/data/out.txt")
        row.dagster_run_id, row.sha256, row.created_at = run_id, sha, created
        session.add(row)


def _nodes(settings, execution_id: str) -> dict[str, NodeState]:
    with get_db(settings) as session:
        return {s.node_id: s for s in session.scalars(select(NodeState).filter_by(execution_id=execution_id))}


def _artifacts(settings, execution_id: str) -> list[tuple[str, str]]:
    with get_db(settings) as session:
        rows = session.scalars(select(Artifact).filter_by(execution_id=execution_id).order_by(Artifact.created_at))
        return [(a.dagster_run_id, a.sha256) for a in rows]


def test_0004_upgrade_and_downgrade_with_rows(empty_db):
    # the rows are written with today's models (whose columns a later revision may have added), then the schema
    # is taken back to 0003 with them
    migrate.upgrade(empty_db)
    execution_id = _execution(empty_db)
    migrate.downgrade(empty_db, "0003")
    _artifact(empty_db, execution_id, "run-1", "a" * 64, T0)
    with pytest.raises(IntegrityError):  # 0003: one row per path, whatever the run
        _artifact(empty_db, execution_id, "run-2", "b" * 64, T0 + timedelta(minutes=1))

    migrate.upgrade(empty_db, "0004")
    states = _nodes(empty_db, execution_id)
    done, broke = states["done"], states["broke"]
    assert (done.error_message, done.error_type, done.duration_seconds) == (None, None, 2.5)
    assert (broke.error_message, broke.error_type, broke.duration_seconds) == ("broke", "RuntimeError", 1.0)
    _artifact(empty_db, execution_id, "run-2", "b" * 64, T0 + timedelta(minutes=1))  # a row per run now
    with pytest.raises(IntegrityError):
        _artifact(empty_db, execution_id, "run-2", "c" * 64, T0 + timedelta(minutes=2))
    assert _artifacts(empty_db, execution_id) == [("run-1", "a" * 64), ("run-2", "b" * 64)]

    migrate.downgrade(empty_db, "0003")
    assert _artifacts(empty_db, execution_id) == [("run-2", "b" * 64)]  # the latest row of the path
    migrate.upgrade(empty_db)
    assert migrate.current_revision(empty_db) == migrate.head_revision()
    assert migrate.pending_model_changes(empty_db) == []
    assert _nodes(empty_db, execution_id)["done"].duration_seconds == 2.5
