"""What the API does, apart from HTTP: read executions from the tables, and act on them through Dagster.

Execute creates the execution row first (its id is the one every later call and table uses), then launches
the run through Dagster's GraphQL API with that id as the ``maestro/execution_id`` tag. Resume re-executes
the latest run from failure; cancel terminates it; pause tags it ``maestro/pause_requested`` then terminates
it (the mirror then records ``paused``); approve records a decision for a ``human_review`` node.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.orm import Session

from maestro_dagster.api.dagster_client import DagsterGateway
from maestro_dagster.api.schemas import (
    ArtifactResponse,
    EventResponse,
    ExecutionStatusResponse,
    NodeStateResponse,
    RunResponse,
)
from maestro_dagster.approvals import record_decision
from maestro_dagster.db.enums import WorkflowStatus
from maestro_dagster.db.models import Artifact, ExecutionEvent, ExecutionRun, NodeState, WorkflowExecution
from maestro_dagster.db.repositories import RepositoryFactory
from maestro_dagster.db.session import get_db
from maestro_dagster.defs_store import load_spec
from maestro_dagster.errors import ConflictError, NotFoundError
from maestro_dagster.names import job_name
from maestro_dagster.settings import Settings
from maestro_dagster.tags import TAG_CANCELLED_BY, TAG_PAUSE, TRIGGER_RESUME, launch_tags

RESUMABLE = (WorkflowStatus.FAILED, WorkflowStatus.PAUSED, WorkflowStatus.CANCELLED)


# What the status answer shows; the columns it does not (contexts, node inputs, artifact contents) can be large
# JSON documents and are not read. The status answer is the API's most frequent read (clients poll it), so it is
# two statements built once, on the tables (Core, not ORM entities): the execution (found by its id or one of its
# runs' ids) with its runs, then its nodes with their artifacts.
_E, _N, _R, _A = (m.__table__.c for m in (WorkflowExecution, NodeState, ExecutionRun, Artifact))
_RUNS, _ARTIFACTS = ExecutionRun.__table__, Artifact.__table__
_RUN_OF_REF = select(_R.execution_id).where(_R.run_id == bindparam("ref")).scalar_subquery()
_EXECUTION_AND_RUNS = (
    select(
        _E.id, _E.workflow_id, _E.workflow_version, _E.status, _E.completed_nodes, _E.failed_nodes,
        _E.total_nodes, _E.progress_percent, _E.current_phase, _E.error_message, _E.error_node_id, _E.started_at,
        _E.completed_at, _R.run_id, _R.kind.label("run_kind"), _R.status.label("run_status"), _R.parent_run_id,
        _R.root_run_id, _R.started_at.label("run_started_at"), _R.completed_at.label("run_completed_at"),
    )
    .outerjoin(_RUNS, _R.execution_id == _E.id)
    .where(or_(_E.id == bindparam("ref"), _E.id == _RUN_OF_REF))
    .order_by(_R.created_at)
)  # fmt: skip
_NODES_AND_ARTIFACTS = (
    select(
        _N.node_id, _N.node_name, _N.node_type, _N.status, _N.attempt_count, _N.started_at, _N.completed_at,
        _N.duration_seconds, _N.outputs, _N.error_message, _N.error_type, _N.quality_score,
        func.coalesce(_A.file_path, _A.uri, _A.name).label("artifact"),
    )
    .outerjoin(_ARTIFACTS, and_(_A.execution_id == _N.execution_id, _A.node_id == _N.node_id))
    .where(_N.execution_id == bindparam("execution_id"))
    .order_by(_N.created_at, _A.created_at)
)  # fmt: skip


def _not_found(ref: str) -> NotFoundError:
    return NotFoundError(f"Execution {ref!r} not found (neither an execution id nor a Dagster run id).")


def find_execution(session: Session, ref: str) -> WorkflowExecution:
    """An execution by its id, or by the id of one of its Dagster runs."""
    execution = session.get(WorkflowExecution, ref)
    if execution is None:
        run = session.get(ExecutionRun, ref)
        execution = session.get(WorkflowExecution, run.execution_id) if run is not None else None
    if execution is None:
        raise _not_found(ref)
    return execution


def execution_status(session: Session, ref: str) -> ExecutionStatusResponse:
    """The status answer of an execution (by its id or a Dagster run id of it)."""
    conn = session.connection()
    rows = conn.execute(_EXECUTION_AND_RUNS, {"ref": ref}).all()
    if not rows:
        raise _not_found(ref)
    execution = rows[0]
    runs = [
        RunResponse(
            run_id=r.run_id,
            kind=r.run_kind.value,
            status=r.run_status.value,
            parent_run_id=r.parent_run_id,
            root_run_id=r.root_run_id,
            started_at=r.run_started_at,
            completed_at=r.run_completed_at,
        )
        for r in rows
        if r.run_id is not None
    ]
    nodes: dict[str, NodeStateResponse] = {}
    for n in conn.execute(_NODES_AND_ARTIFACTS, {"execution_id": execution.id}):
        shown = nodes.get(n.node_id)
        if shown is None:
            shown = nodes[n.node_id] = NodeStateResponse(
                node_id=n.node_id,
                node_name=n.node_name,
                node_type=n.node_type,
                status=n.status.value,
                attempt_count=n.attempt_count,
                started_at=n.started_at,
                completed_at=n.completed_at,
                duration=n.duration_seconds,
                outputs=n.outputs,
                artifacts=[],
                error=n.error_message,
                error_type=n.error_type,
                quality_score=n.quality_score,
            )
        if n.artifact is not None:
            shown.artifacts.append(n.artifact)
    return ExecutionStatusResponse(
        execution_id=execution.id,
        workflow_id=execution.workflow_id,
        workflow_version=execution.workflow_version,
        status=execution.status.value,
        completed_nodes=execution.completed_nodes,
        failed_nodes=execution.failed_nodes,
        total_nodes=execution.total_nodes,
        progress_percent=execution.progress_percent,
        current_phase=execution.current_phase,
        node_states=list(nodes.values()),
        runs=runs,
        error_message=execution.error_message,
        error_node_id=execution.error_node_id,
        started_at=execution.started_at,
        completed_at=execution.completed_at,
    )


def event_response(event: ExecutionEvent, workflow_id: str) -> EventResponse:
    return EventResponse(
        id=event.id,
        type=event.event_type.value,
        timestamp=event.timestamp,
        workflow_id=workflow_id,
        execution_id=event.execution_id,
        node_id=event.node_id,
        message=event.message,
        data=event.data,
    )


def events_after(
    session: Session,
    *,
    execution_id: str | None = None,
    workflow_id: str | None = None,
    after: int = 0,
    limit: int = 1000,
) -> list[EventResponse]:
    """Mirrored events in order (``id``) after ``after``, of one execution or of every execution of a workflow."""
    stmt = (
        select(ExecutionEvent, WorkflowExecution.workflow_id)
        .join(WorkflowExecution, WorkflowExecution.id == ExecutionEvent.execution_id)
        .where(ExecutionEvent.id > after)
    )
    if execution_id is not None:
        stmt = stmt.where(ExecutionEvent.execution_id == execution_id)
    if workflow_id is not None:
        stmt = stmt.where(WorkflowExecution.workflow_id == workflow_id)
    rows = session.execute(stmt.order_by(ExecutionEvent.id).limit(limit)).all()
    return [event_response(event, wf) for event, wf in rows]


def artifacts_of(session: Session, execution_id: str) -> list[ArtifactResponse]:
    return [
        ArtifactResponse(
            node_id=a.node_id,
            artifact_type=a.artifact_type,
            name=a.name,
            file_path=a.file_path,
            uri=a.uri,
            content_type=a.content_type,
            size_bytes=a.size_bytes,
            sha256=a.sha256,
            created_at=a.created_at,
        )
        for a in RepositoryFactory(session).artifact.list_by_execution(execution_id)
    ]


def execute(
    settings: Settings, gateway: DagsterGateway, workflow_id: str, initial_context: dict[str, Any], actor: str
) -> tuple[WorkflowExecution, str]:
    """Create the execution, then launch its run through Dagster. Returns (execution, run id)."""
    with get_db(settings, immediate=True) as session:
        repos = RepositoryFactory(session)
        load_spec(repos.workflow.require(workflow_id))  # valid definitions only
        execution = repos.execution.create(
            workflow_id,
            initial_context,
            metadata={"trigger": "api", "requested_by": actor, "job_name": job_name(workflow_id)},
        )
        execution_id = execution.id
    tags = launch_tags(execution_id, "api", workflow_id)
    try:
        run_id = gateway.launch(job_name(workflow_id), {"initial_context": initial_context}, tags)
    except Exception as exc:
        with get_db(settings) as session:
            RepositoryFactory(session).execution.update_status(
                execution_id, WorkflowStatus.FAILED, f"could not launch the run: {getattr(exc, 'message', exc)}"
            )
        raise
    with get_db(settings) as session:
        return RepositoryFactory(session).execution.require(execution_id), run_id


def _latest_run(execution: WorkflowExecution) -> ExecutionRun | None:
    runs = sorted(execution.runs, key=lambda r: r.created_at)
    return runs[-1] if runs else None


def resume(settings: Settings, gateway: DagsterGateway, ref: str) -> tuple[str, str]:
    """Re-execute the latest run from failure. The execution is ``pending`` from here until the mirror sees the
    new run start: a client polling for the end does not read the old end, and a second resume gets 409."""
    with get_db(settings, immediate=True) as session:
        execution = find_execution(session, ref)
        execution = session.get(WorkflowExecution, execution.id, with_for_update=True, populate_existing=True)
        latest = _latest_run(execution)
        if execution.status not in RESUMABLE or latest is None:
            raise ConflictError(
                f"Execution {execution.id} is {execution.status.value}; only failed, paused or cancelled executions "
                "with a run can be resumed.",
                details={"status": execution.status.value},
            )
        execution_id, parent, previous = execution.id, latest.run_id, execution.status
        execution.status = WorkflowStatus.PENDING
    try:
        run_id = gateway.reexecute_from_failure(parent, launch_tags(execution_id, TRIGGER_RESUME))
    except Exception:
        with get_db(settings) as session:
            row = session.get(WorkflowExecution, execution_id)
            if row is not None and row.status is WorkflowStatus.PENDING:
                row.status = previous
        raise
    return execution_id, run_id


def _active_run(settings: Settings, ref: str) -> tuple[str, str]:
    with get_db(settings) as session:
        execution = find_execution(session, ref)
        latest = _latest_run(execution)
        if execution.status.is_terminal or execution.status is WorkflowStatus.PAUSED or latest is None:
            raise ConflictError(
                f"Execution {execution.id} is {execution.status.value} and has no active run to stop.",
                details={"status": execution.status.value},
            )
        return execution.id, latest.run_id


def cancel(settings: Settings, gateway: DagsterGateway, instance: Any, ref: str, by: str) -> tuple[str, str]:
    """Terminate the execution's active run; ``by`` (the API user) is recorded as ``maestro/cancelled_by`` first,
    so the stopped node's error says who cancelled it."""
    execution_id, run_id = _active_run(settings, ref)
    instance.add_run_tags(run_id, {TAG_CANCELLED_BY: f"Maestro API user {by}"})
    gateway.terminate(run_id)
    return execution_id, run_id


def pause(settings: Settings, gateway: DagsterGateway, instance: Any, ref: str, by: str) -> tuple[str, str]:
    execution_id, run_id = _active_run(settings, ref)
    instance.add_run_tags(run_id, {TAG_PAUSE: "true", TAG_CANCELLED_BY: f"Maestro API user {by}"})
    gateway.terminate(run_id)
    return execution_id, run_id


def approve(settings: Settings, ref: str, node_id: str, approved: bool, comment: str | None, actor: str) -> str:
    """Record (or replace) the decision on a human_review node; the waiting node picks it up."""
    with get_db(settings, immediate=True) as session:
        execution = find_execution(session, ref)
        record_decision(session, execution.id, node_id, approved, comment, actor)
        return execution.id


def list_executions(
    session: Session, workflow_id: str | None, status: str | None, limit: int, offset: int
) -> list[WorkflowExecution]:
    statuses = [WorkflowStatus(status)] if status else None
    return RepositoryFactory(session).execution.list(
        workflow_id=workflow_id, statuses=statuses, limit=limit, offset=offset
    )
