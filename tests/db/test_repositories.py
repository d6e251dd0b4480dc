"""The seed's repository methods and the context store, on SQLite and PostgreSQL.

The repository tests run in the fast tier (``fast_db``: the session's migrated database, each test in a
transaction rolled back after it); the context store opens its own sessions, so its test has a database of its own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from maestro_dagster.db import (
    DatabaseWorkflowContextStore,
    EventType,
    NodeStatus,
    RepositoryFactory,
    WorkflowContext,
    WorkflowStatus,
)
from maestro_dagster.db.context_store import NodeStateSnapshot
from maestro_dagster.db.models import NodeState
from maestro_dagster.db.repositories import DefinitionRecord, NodeStateUpdate
from maestro_dagster.errors import ConflictError, NotFoundError
from maestro_dagster.names import EXECUTION_ID_RE

NODES = {f"n{i}": {"name": f"node {i}", "type": "custom"} for i in range(6)}
EDGES = [{"source": f"n{i}", "target": f"n{i + 1}"} for i in range(5)]


def record(workflow_id: str = "sdlc_parallel", content_hash: str = "h1", **kw) -> DefinitionRecord:
    nodes = kw.pop("nodes", NODES)
    return DefinitionRecord(
        id=workflow_id,
        name=kw.pop("name", "SDLC"),
        workflow_type="parallel",
        nodes=nodes,
        edges=EDGES,
        definition={"id": workflow_id, "nodes": nodes, "edges": EDGES},
        content_hash=content_hash,
        **kw,
    )


def test_workflow_versions_only_on_content_change(fast_db):
    with fast_db.scope() as session:
        repos = RepositoryFactory(session)
        row, changed = repos.workflow.create(record())
        assert (row.id, row.version, changed) == ("sdlc_parallel", 1, True)
        row, changed = repos.workflow.create(record())
        assert (row.version, changed) == (1, False)
        row, changed = repos.workflow.create(record(content_hash="h2", name="SDLC v2"))
        assert (row.version, row.name, changed) == (2, "SDLC v2", True)
        assert [v.version for v in repos.workflow.list_versions("sdlc_parallel")] == [1, 2]
    with fast_db.scope() as session:
        repos = RepositoryFactory(session)
        assert repos.workflow.get("sdlc_parallel").content_hash == "h2"
        assert [w.id for w in repos.workflow.list(limit=10)] == ["sdlc_parallel"]
        assert repos.workflow.get("missing") is None


def test_invalid_definition_is_stored_with_errors_and_not_listed_as_valid(db_session):
    errors = [{"code": "cycle", "message": "a -> b -> a"}]
    repos = RepositoryFactory(db_session)
    repos.workflow.create(record("ok"))
    repos.workflow.create(record("bad", is_valid=False, validation_errors=errors))
    assert repos.workflow.list_ids() == ["ok"]
    assert sorted(repos.workflow.list_ids(valid_only=False)) == ["bad", "ok"]
    assert repos.workflow.get("bad").validation_errors == errors


def test_execution_lifecycle_and_progress_uses_definition_node_count(fast_db):
    with fast_db.scope() as session:
        repos = RepositoryFactory(session)
        repos.workflow.create(record())
        execution = repos.execution.create("sdlc_parallel", {"requirement": "Build a todo app"})
        assert EXECUTION_ID_RE.match(execution.id)
        assert execution.status is WorkflowStatus.PENDING
        assert execution.total_nodes == 6
        states = repos.node_state.get_by_execution(execution.id)
        assert {s.node_id for s in states} == set(NODES)
        assert all(s.status is NodeStatus.PENDING for s in states)
        exec_id = execution.id

    with fast_db.scope() as session:
        repos = RepositoryFactory(session)
        repos.execution.update_status(exec_id, WorkflowStatus.RUNNING)
        t0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        repos.node_state.create_or_update(
            exec_id,
            "n0",
            NodeStateUpdate(status=NodeStatus.COMPLETED, started_at=t0, completed_at=t0 + timedelta(seconds=2.5)),
        )
        repos.node_state.create_or_update(exec_id, "n1", status=NodeStatus.FAILED, error_message="boom")
        execution = repos.execution.update_progress(exec_id)
        # Only one node completed: 1/6, never "100% of the states seen so far".
        assert (execution.completed_nodes, execution.failed_nodes, execution.total_nodes) == (1, 1, 6)
        assert execution.progress_percent == 16.67
        node = repos.node_state.get_node(exec_id, "n0")
        assert node.duration_seconds == 2.5
        assert node.started_at.tzinfo is not None and node.started_at == t0
        assert [e.id for e in repos.execution.list_active()] == [exec_id]
        repos.execution.update_status(exec_id, WorkflowStatus.FAILED, "n1 failed", error_node_id="n1")

    with fast_db.scope() as session:
        repos = RepositoryFactory(session)
        execution = repos.execution.get(exec_id)
        assert execution.status is WorkflowStatus.FAILED
        assert execution.completed_at is not None and execution.completed_at.tzinfo is not None
        assert (execution.error_message, execution.error_node_id) == ("n1 failed", "n1")
        assert repos.execution.list_active() == []
        assert [e.id for e in repos.execution.list_by_workflow("sdlc_parallel")] == [exec_id]


def test_execution_for_unknown_workflow_is_not_found(db_session):
    with pytest.raises(NotFoundError, match="nope"):
        RepositoryFactory(db_session).execution.create("nope", {})


def test_delete_workflow_refuses_while_executions_exist(fast_db):
    with fast_db.scope() as session:
        repos = RepositoryFactory(session)
        repos.workflow.create(record())
        exec_id = repos.execution.create("sdlc_parallel", {}).id
    with fast_db.scope() as session, pytest.raises(ConflictError, match="with_executions"):
        RepositoryFactory(session).workflow.delete("sdlc_parallel")
    with fast_db.scope() as session:
        assert RepositoryFactory(session).workflow.delete("sdlc_parallel", with_executions=True)
    with fast_db.scope() as session:
        assert RepositoryFactory(session).execution.get(exec_id) is None
        assert session.query(NodeState).count() == 0


def test_events_replayed_dagster_event_is_ignored(db_session):
    repos = RepositoryFactory(db_session)
    repos.workflow.create(record())
    exec_id = repos.execution.create("sdlc_parallel", {}).id
    assert repos.event.create(exec_id, EventType.WORKFLOW_STARTED, dagster_run_id="r1", dagster_storage_id=10)
    assert repos.event.create(
        exec_id, "node_started", "n0", data={"attempt": 1}, dagster_run_id="r1", dagster_storage_id=11
    )
    # Replays of the same Dagster events change nothing.
    assert not repos.event.create(exec_id, EventType.WORKFLOW_STARTED, dagster_run_id="r1", dagster_storage_id=10)
    assert not repos.event.create(exec_id, "node_started", "n0", dagster_run_id="r1", dagster_storage_id=11)
    # The same storage id in another run (SQLite keeps one event log per run) is a different event.
    assert repos.event.create(exec_id, "node_started", "n0", dagster_run_id="r2", dagster_storage_id=11)
    # Two Maestro events derived from one Dagster event are told apart by their part number.
    assert repos.event.create(exec_id, "artifact_created", "n0", dagster_run_id="r1", dagster_storage_id=12)
    assert repos.event.create(
        exec_id, "artifact_created", "n0", dagster_run_id="r1", dagster_storage_id=12, dagster_event_part=1
    )
    # Events logged by hand (no Dagster ids) are all kept.
    repos.event.create(exec_id, EventType.NODE_RETRY, "n0")
    repos.event.create(exec_id, EventType.NODE_RETRY, "n0")
    events = repos.event.list_by_execution(exec_id)
    assert [e.event_type.value for e in events] == [
        "workflow_started", "node_started", "node_started", "artifact_created", "artifact_created",
        "node_retry", "node_retry",
    ]  # fmt: skip
    assert [e.id for e in repos.event.list_by_execution(exec_id, after_id=events[4].id)] == [
        events[5].id, events[6].id,
    ]  # fmt: skip
    assert len(repos.event.list_by_node(exec_id, "n0")) == 6


def test_unique_constraints_reject_duplicates(fast_db):
    with fast_db.scope() as session:
        repos = RepositoryFactory(session)
        repos.workflow.create(record())
        exec_id = repos.execution.create("sdlc_parallel", {}).id
    from maestro_dagster.db.models import ExecutionEvent

    with pytest.raises(IntegrityError), fast_db.scope() as session:
        session.add(NodeState(execution_id=exec_id, node_id="n0", status=NodeStatus.PENDING))
        session.flush()
    with pytest.raises(IntegrityError), fast_db.scope() as session:
        for _ in range(2):
            session.add(
                ExecutionEvent(
                    execution_id=exec_id, event_type=EventType.NODE_STARTED, dagster_run_id="r", dagster_storage_id=1
                )
            )
        session.flush()


def test_artifacts_upsert_by_path(db_session):
    repos = RepositoryFactory(db_session)
    repos.workflow.create(record())
    exec_id = repos.execution.create("sdlc_parallel", {}).id
    repos.artifact.create(exec_id, "n0", "file", file_path="/tmp/a.md", size_bytes=1)
    repos.artifact.create(exec_id, "n0", "file", file_path="/tmp/a.md", size_bytes=2, sha256="ab")
    repos.artifact.create(exec_id, "n1", "report", name="r", content="hello")
    rows = repos.artifact.list_by_execution(exec_id)
    assert [(a.node_id, a.name, a.size_bytes) for a in rows] == [("n0", "a.md", 2), ("n1", "r", None)]
    assert [a.sha256 for a in repos.artifact.list_by_node(exec_id, "n0")] == ["ab"]


def test_context_store_round_trip(db):
    store = DatabaseWorkflowContextStore(db)
    assert store.register_workflow(record()) == "sdlc_parallel"
    t0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    context = WorkflowContext(
        workflow_id="sdlc_parallel",
        execution_id="exec_sdlc_parallel_20260301_093000_abcdef12",
        node_states={
            "n0": NodeStateSnapshot(
                node_id="n0",
                status=NodeStatus.COMPLETED,
                start_time=t0,
                end_time=t0 + timedelta(seconds=3),
                attempt_count=2,
            ),
            "n1": NodeStateSnapshot(node_id="n1", status=NodeStatus.FAILED, attempt_count=1, error_message="bad"),
        },
        node_outputs={"n0": {"value": 42, "nested": {"k": [1, 2]}}},
        artifacts={"n0": ["/tmp/x.md", "/tmp/x.md", "/tmp/y.md"]},
        global_context={"requirement": "Build a todo app", "session_id": "s1"},
    )
    store.save_context(context)
    store.save_context(context)  # saving twice changes nothing
    loaded = store.load_context(context.execution_id)
    assert loaded is not None
    assert loaded.global_context == context.global_context
    assert loaded.node_outputs == {"n0": {"value": 42, "nested": {"k": [1, 2]}}}
    assert loaded.artifacts == {"n0": ["/tmp/x.md", "/tmp/y.md"]}
    assert loaded.node_states["n0"].status is NodeStatus.COMPLETED
    assert loaded.node_states["n0"].start_time == t0
    assert loaded.node_states["n0"].attempt_count == 2
    assert loaded.node_states["n1"].error_message == "bad"
    assert loaded.get_completed_nodes() == {"n0"}
    assert set(loaded.node_states) == set(NODES)  # every node of the definition has a state
    assert store.list_executions("sdlc_parallel") == [context.execution_id]
    assert store.list_executions("other") == []
    store.log_event(context.execution_id, "node_skipped", "n2", data={"condition": "False"})
    store.log_event(context.execution_id, "node_retry", "n1")
    assert [e["event_type"] for e in store.get_events(context.execution_id)] == ["node_skipped", "node_retry"]
    store.update_execution_status(context.execution_id, "completed")
    status = store.get_execution_status(context.execution_id)
    assert status["status"] == "completed" and status["completed_nodes"] == 1 and status["total_nodes"] == 6
    assert store.delete_context(context.execution_id)
    assert store.load_context(context.execution_id) is None
    assert store.load_context("exec_missing") is None
