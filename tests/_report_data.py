"""A small dataset whose reporting answers are computed by hand (see ``EXPECTED``): two workflows over two UTC days,
with a retried node, a failure and the node it blocked, a skipped node, a re-execution (two runs of one execution),
a running and a cancelled execution. ``insert(session)`` writes it; the tests compare views and rollups with it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from maestro_dagster.db.models import ExecutionEvent, ExecutionRun, NodeState, WorkflowDefinition, WorkflowExecution
from maestro_dagster.states import EventType, NodeStatus, RunKind, WorkflowStatus

D1, D2 = date(2026, 10, 1), date(2026, 10, 2)


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


# execution id -> (workflow, day, hour, status, duration seconds or None, runs [(kind, trigger)], nodes)
# a node: (node id, status, attempts, duration, quality, error type)
EXECUTIONS = {
    "e1": ("alpha", D1, 10, WorkflowStatus.COMPLETED, 10, [(RunKind.INITIAL, "api")], [
        ("a", NodeStatus.COMPLETED, 1, 2.0, 0.8, None),
        ("b", NodeStatus.COMPLETED, 3, 4.0, 0.6, None),
    ]),
    "e2": ("alpha", D1, 11, WorkflowStatus.FAILED, 5, [(RunKind.INITIAL, "schedule")], [
        ("a", NodeStatus.FAILED, 2, 1.0, None, "ValueError"),
        ("b", NodeStatus.BLOCKED, 0, None, None, None),
    ]),
    "e3": ("alpha", D1, 12, WorkflowStatus.COMPLETED, 60, [(RunKind.INITIAL, "cli"), (RunKind.RESUME, "resume")], [
        ("a", NodeStatus.COMPLETED, 2, 3.0, None, None),
        ("b", NodeStatus.SKIPPED, 0, None, None, None),
    ]),
    "e4": ("beta", D2, 8, WorkflowStatus.RUNNING, None, [(RunKind.INITIAL, "api")], [
        ("x", NodeStatus.RUNNING, 1, None, None, None),
    ]),
    "e5": ("beta", D2, 9, WorkflowStatus.CANCELLED, 30, [(RunKind.INITIAL, "sensor")], [
        ("x", NodeStatus.COMPLETED, 1, 5.0, None, None),
    ]),
}  # fmt: skip

# node_failed events: (execution, node, error type, message, attempt)
FAILURES = [("e2", "a", "ValueError", "bad value", 2), ("e3", "a", "RuntimeError", "flaky", 1)]


def insert(session: Session) -> None:
    for workflow_id in ("alpha", "beta"):
        session.add(
            WorkflowDefinition(
                id=workflow_id,
                name=workflow_id,
                nodes={},
                edges=[],
                definition={"id": workflow_id},
                content_hash="0" * 64,
            )
        )
    session.flush()
    for execution_id, (workflow_id, day, hour, status, duration, runs, nodes) in EXECUTIONS.items():
        started = at(day, hour)
        session.add(
            WorkflowExecution(
                id=execution_id,
                workflow_id=workflow_id,
                workflow_version=1,
                status=status,
                total_nodes=len(nodes),
                created_at=started - timedelta(seconds=1),
                started_at=started,
                completed_at=started + timedelta(seconds=duration) if duration is not None else None,
            )
        )
        session.flush()
        for i, (kind, trigger) in enumerate(runs):
            session.add(
                ExecutionRun(
                    run_id=f"{execution_id}-run{i}",
                    execution_id=execution_id,
                    kind=kind,
                    trigger=trigger,
                    status=status,
                )
            )
        for node_id, node_status, attempts, node_duration, quality, error_type in nodes:
            session.add(
                NodeState(
                    execution_id=execution_id,
                    node_id=node_id,
                    status=node_status,
                    attempt_count=attempts,
                    duration_seconds=node_duration,
                    quality_score=quality,
                    error_type=error_type,
                    completed_at=started + timedelta(seconds=1) if node_status != NodeStatus.RUNNING else None,
                )
            )
    for storage_id, (execution_id, node_id, error_type, message, attempt) in enumerate(FAILURES, start=1):
        session.add(
            ExecutionEvent(
                execution_id=execution_id,
                event_type=EventType.NODE_FAILED,
                node_id=node_id,
                message=message,
                data={"error": message, "error_type": error_type, "attempts": attempt},
                timestamp=at(EXECUTIONS[execution_id][1], 13),
                dagster_run_id=f"{execution_id}-run0",
                dagster_storage_id=storage_id,
            )
        )
    session.flush()


@pytest.fixture
def report_data(db_session: Session) -> Session:
    """``db_session`` with the dataset inserted (rolled back after the test)."""
    insert(db_session)
    return db_session
