"""The API's reads of executions: functions that take a session (the caller's read transaction, see
``api.deps.read``) and build the response models, including what the workflow list shows of each workflow's
executions (``workflow_activity``). The actions live in ``maestro_dagster.executions``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, bindparam, case, func, or_, select
from sqlalchemy.orm import Session

from maestro_dagster.api.artifact_files import Download, download_of, downloadable, not_this_executions
from maestro_dagster.api.schemas import (
    ArtifactResponse,
    EventResponse,
    ExecutionStatusResponse,
    ExecutionSummary,
    NodeStateResponse,
    RunResponse,
    SlaMissedResponse,
)
from maestro_dagster.db.models import (
    Artifact,
    ExecutionEvent,
    ExecutionRun,
    NodeState,
    WorkflowDefinition,
    WorkflowExecution,
)
from maestro_dagster.db.repositories import RepositoryFactory
from maestro_dagster.db.types import utcnow
from maestro_dagster.executions.queries import find_execution, not_found
from maestro_dagster.states import EventType, WorkflowStatus

# What the status answer shows; the columns it does not (contexts, artifact contents) can be large JSON documents
# and are not read (a node's inputs are a summary: upstream statuses, its config, the context's keys). The status
# answer is the API's most frequent read (clients poll it), so it is two statements built once, on the tables
# (Core, not ORM entities): the execution (found by its id or one of its runs' ids) with its runs, then its nodes
# with their artifacts.
_E, _N, _R, _A = (m.__table__.c for m in (WorkflowExecution, NodeState, ExecutionRun, Artifact))
_RUNS, _ARTIFACTS = ExecutionRun.__table__, Artifact.__table__
_D, _L = WorkflowDefinition.__table__.c, WorkflowExecution.__table__.alias("latest").c
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
        _N.duration_seconds, _N.inputs, _N.outputs, _N.error_message, _N.error_type, _N.quality_score,
        func.coalesce(_A.file_path, _A.uri, _A.name).label("artifact"),
    )
    .outerjoin(_ARTIFACTS, and_(_A.execution_id == _N.execution_id, _A.node_id == _N.node_id))
    .where(_N.execution_id == bindparam("execution_id"))
    .order_by(_N.created_at, _A.created_at)
)  # fmt: skip

_EV = ExecutionEvent.__table__.c
_SLA_MISSED = (
    select(_EV.node_id, _EV.data, _EV.timestamp)
    .where(_EV.execution_id == bindparam("execution_id"), _EV.event_type == EventType.SLA_MISSED)
    .order_by(_EV.id)
)


def execution_status(session: Session, ref: str) -> ExecutionStatusResponse:
    """The status answer of an execution (by its id or a Dagster run id of it)."""
    conn = session.connection()
    rows = conn.execute(_EXECUTION_AND_RUNS, {"ref": ref}).all()
    if not rows:
        raise not_found(ref)
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
                inputs=n.inputs,
                outputs=n.outputs,
                artifacts=[],
                error=n.error_message,
                error_type=n.error_type,
                quality_score=n.quality_score,
            )
        if n.artifact is not None:
            shown.artifacts.append(n.artifact)
    sla_missed = [
        SlaMissedResponse(
            node_id=r.node_id, limit_seconds=float((r.data or {}).get("limit_seconds") or 0), at=r.timestamp
        )
        for r in conn.execute(_SLA_MISSED, {"execution_id": execution.id})
    ]
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
        sla_missed=sla_missed,
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
        run_id=event.dagster_run_id,
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


def artifacts_of(session: Session, execution_id: str, roots: Sequence[Path]) -> list[ArtifactResponse]:
    """The execution's artifacts, each saying whether it is ``downloadable`` under ``roots``
    (``artifact_files``)."""
    return [
        ArtifactResponse(
            id=a.id,
            node_id=a.node_id,
            artifact_type=a.artifact_type,
            name=a.name,
            file_path=a.file_path,
            uri=a.uri,
            content_type=a.content_type,
            size_bytes=a.size_bytes,
            sha256=a.sha256,
            created_at=a.created_at,
            downloadable=downloadable(a, roots),
        )
        for a in RepositoryFactory(session).artifact.list_by_execution(execution_id)
    ]


def execution_summaries(
    session: Session,
    workflow_id: str | None,
    state: str | None,
    limit: int,
    offset: int,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[ExecutionSummary]:
    """Executions newest first (``created_at``, then id), of one workflow and status when given, created at or
    after ``since`` and before ``until`` when given."""
    stmt = select(_E.id, _E.workflow_id, _E.status, _E.progress_percent, _E.started_at, _E.completed_at, _E.created_at)
    if workflow_id:
        stmt = stmt.where(_E.workflow_id == workflow_id)
    if state:
        stmt = stmt.where(_E.status == WorkflowStatus(state))
    if since is not None:
        stmt = stmt.where(_E.created_at >= since)
    if until is not None:
        stmt = stmt.where(_E.created_at < until)
    stmt = stmt.order_by(_E.created_at.desc(), _E.id.desc()).limit(limit).offset(offset)
    return [
        ExecutionSummary(
            execution_id=e.id,
            workflow_id=e.workflow_id,
            status=e.status.value,
            progress_percent=e.progress_percent,
            started_at=e.started_at,
            completed_at=e.completed_at,
            created_at=e.created_at,
        )
        for e in session.connection().execute(stmt)
    ]


SUCCESS_RATE_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class WorkflowActivity:
    """What the workflow list shows of a workflow's executions (``GET /api/workflows``)."""

    last_status: str | None = None
    last_at: datetime | None = None
    success_rate: float | None = None


def workflow_activity(
    session: Session, workflow_ids: Sequence[str], now: datetime | None = None
) -> dict[str, WorkflowActivity]:
    """For each of ``workflow_ids`` with executions: the status and ``created_at`` of its most recent execution
    (by ``created_at``, then id), and the percent of its executions created in the last ``SUCCESS_RATE_WINDOW``
    that ended completed among those that ended completed or failed (None when none did). Two statements for
    the whole page, whatever its size, both on the index ``idx_execution_workflow_created`` (workflow_id,
    created_at, status; migration 0007): the latest execution's status and time of each (a backward probe per
    workflow), then the counts of each over the window."""
    ids = list(dict.fromkeys(workflow_ids))
    if not ids:
        return {}
    conn = session.connection()

    def latest(column: Any) -> Any:  # the column of the workflow's latest execution, one index probe each
        newest = (_L.created_at.desc(), _L.id.desc())
        return select(column).where(_L.workflow_id == _D.id).order_by(*newest).limit(1).scalar_subquery()

    rows = conn.execute(
        select(_D.id, latest(_L.status).label("status"), latest(_L.created_at).label("created_at")).where(
            _D.id.in_(ids)
        )
    )
    last = {r.id: (WorkflowStatus(r.status).value, r.created_at) for r in rows if r.created_at is not None}
    completed = func.sum(case((_E.status == WorkflowStatus.COMPLETED, 1), else_=0))
    counts = conn.execute(
        select(_E.workflow_id, completed.label("completed"), func.count().label("finished"))
        .where(
            _E.workflow_id.in_(ids),
            _E.status.in_([WorkflowStatus.COMPLETED, WorkflowStatus.FAILED]),
            _E.created_at >= (now or utcnow()) - SUCCESS_RATE_WINDOW,
        )
        .group_by(_E.workflow_id)
    )
    rates = {r.workflow_id: 100.0 * r.completed / r.finished for r in counts if r.finished}
    return {wid: WorkflowActivity(*last[wid], success_rate=rates.get(wid)) for wid in ids if wid in last}


def execution_events(session: Session, ref: str, after: int, limit: int) -> list[EventResponse]:
    """The events of an execution (by its id or a Dagster run id of it) after ``after``."""
    return events_after(session, execution_id=find_execution(session, ref).id, after=after, limit=limit)


def execution_artifacts(session: Session, ref: str, roots: Sequence[Path]) -> list[ArtifactResponse]:
    return artifacts_of(session, find_execution(session, ref).id, roots)


def artifact_download(session: Session, ref: str, artifact_id: str, roots: Sequence[Path]) -> Download:
    """What downloading artifact ``artifact_id`` of execution ``ref`` sends (``artifact_files``): a row of another
    execution is not found, as an unknown one is."""
    execution = find_execution(session, ref)
    row = session.get(Artifact, artifact_id)
    if row is None or row.execution_id != execution.id:
        raise not_this_executions(artifact_id, execution.id)
    return download_of(row, roots)
