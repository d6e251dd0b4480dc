"""Reads of executions that the actions and the API share: functions that take a session and never commit.

An execution is found by its own id or by the id of one of its Dagster runs; its latest run is the one created
last. The callers (the actions of ``executions.actions``, the API's read routes) own the transaction.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from maestro_dagster.db.models import ExecutionRun, WorkflowExecution
from maestro_dagster.db.repositories import RepositoryFactory
from maestro_dagster.errors import NotFoundError
from maestro_dagster.states import WorkflowStatus

# The statuses from which an execution may be re-executed from failure (``maestro resume``, the API's resume).
RESUMABLE = (WorkflowStatus.FAILED, WorkflowStatus.PAUSED, WorkflowStatus.CANCELLED)


def not_found(ref: str) -> NotFoundError:
    return NotFoundError(f"Execution {ref!r} not found (neither an execution id nor a Dagster run id).")


def find_execution(session: Session, ref: str, *, for_update: bool = False) -> WorkflowExecution:
    """An execution by its id, or by the id of one of its Dagster runs; ``for_update`` locks its row (PostgreSQL;
    SQLite's write transaction already excludes other writers)."""
    execution = session.get(WorkflowExecution, ref)
    if execution is None:
        run = session.get(ExecutionRun, ref)
        execution = session.get(WorkflowExecution, run.execution_id) if run is not None else None
    if execution is None:
        raise not_found(ref)
    if for_update:
        execution = session.get(WorkflowExecution, execution.id, with_for_update=True, populate_existing=True)
        assert execution is not None
    return execution


def latest_run(execution: WorkflowExecution) -> ExecutionRun | None:
    """The execution's run created last (None before its first run exists)."""
    runs = sorted(execution.runs, key=lambda r: r.created_at)
    return runs[-1] if runs else None


def list_executions(
    session: Session, workflow_id: str | None, status: str | None, limit: int, offset: int
) -> list[WorkflowExecution]:
    statuses = [WorkflowStatus(status)] if status else None
    return RepositoryFactory(session).execution.list(
        workflow_id=workflow_id, statuses=statuses, limit=limit, offset=offset
    )
