"""Moving an execution's view in and out of Maestro's tables (the caller owns the transaction).

``ensure_execution`` creates the execution (and its pending node states) for a run launched without one
(UI, ``dagster job execute``, schedules) and registers the run in ``execution_runs``. ``load_view`` locks
the execution row on PostgreSQL so two mirrors of the same execution take turns. ``insert_events`` (with
``ON CONFLICT DO NOTHING``: a replayed event inserts nothing) and ``upsert_artifacts`` are the only writers of
``execution_events`` and ``artifacts``; the rows of an existing execution are written back by
``live_view.save_changes``, those of a new one by ``fresh.write_fresh``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from dagster import DagsterRun
from sqlalchemy import select
from sqlalchemy.orm import Session

from maestro_dagster.db.dialect import for_update, insert_for, notify, upsert
from maestro_dagster.db.models import Artifact, ExecutionEvent, ExecutionRun, NodeState, WorkflowExecution
from maestro_dagster.db.repositories import ExecutionRepository, WorkflowRepository
from maestro_dagster.mirror.model import ArtifactRow, EventRow, ExecutionView, NodeView, RunView
from maestro_dagster.spec.partitions import partition_columns
from maestro_dagster.states import RunKind, WorkflowStatus
from maestro_dagster.tags import (  # noqa: F401 - TAG_PAUSE, TAG_CANCELLED_BY re-exported for their old users
    NOTIFY_CHANNEL,
    PARENT_RUN_TAG,
    ROOT_RUN_TAG,
    TAG_CANCELLED_BY,
    TAG_PAUSE,
    TAG_TRIGGER,
    TAG_WORKFLOW_VERSION,
    initial_context_of,
)

LOADED_ROWS = "maestro_mirror_loaded_rows"  # session.info key: rows load_view read, by execution id
NODE_FIELDS = (
    "status", "attempt_count", "run_attempt", "last_run_id", "started_at", "completed_at", "duration_seconds",
    "error_message", "error_type", "inputs", "outputs", "quality_score", "contract_fulfilled",
)  # fmt: skip
UPDATED_NODE_COLUMNS = (*NODE_FIELDS, "updated_at")
ARTIFACT_KEY = ("execution_id", "node_id", "file_path", "dagster_run_id")  # uq_artifact_path
RUN_FIELDS = ("status", "dagster_status", "started_at", "completed_at")  # of execution_runs, kept by the view
EXECUTION_FIELDS = (
    "status", "current_phase", "started_at", "completed_at", "paused_at", "error_message", "error_node_id",
    "final_context", "total_nodes", "completed_nodes", "failed_nodes", "progress_percent",
)  # fmt: skip


def _trigger(run: DagsterRun) -> str:
    if run.tags.get(TAG_TRIGGER):
        return run.tags[TAG_TRIGGER]
    if run.tags.get("dagster/schedule_name"):
        return "schedule"
    if run.tags.get("dagster/sensor_name"):
        return "sensor"
    return "dagster"


def _kind(run: DagsterRun) -> RunKind:
    if not (run.parent_run_id or run.tags.get(PARENT_RUN_TAG)):
        return RunKind.INITIAL
    if run.tags.get("dagster/retry_number"):
        return RunKind.RETRY
    return RunKind.REPLAY if run.tags.get(TAG_TRIGGER) == RunKind.REPLAY.value else RunKind.RESUME  # replay trigger


def ensure_execution(
    session: Session, run: DagsterRun, execution_id: str, created: datetime, workflow_id: str
) -> ExecutionRun | None:
    """The run's row in ``execution_runs``, creating the execution first if needed; None if no definition."""
    run_row = session.get(ExecutionRun, run.run_id)
    if run_row is not None:
        return run_row
    if session.get(WorkflowExecution, execution_id) is None:
        definition = WorkflowRepository(session).get(workflow_id)  # held: create() reads it again from the session
        if definition is None:
            return None
        execution, node_states = new_execution(session, run, execution_id, workflow_id)
        session.add(execution)
        session.add_all([NodeState(**values) for values in node_states])
    run_row = new_run_row(run, execution_id, created)
    session.add(run_row)
    session.flush()
    return run_row


def new_execution(session: Session, run: DagsterRun, execution_id: str, workflow_id: str) -> tuple[Any, list[dict]]:
    """The execution ``ensure_execution`` would create for ``run`` (and its node states' values), not added yet."""
    version = run.tags.get(TAG_WORKFLOW_VERSION)
    repository = ExecutionRepository(session)
    execution, node_states = repository.new_rows(
        workflow_id,
        initial_context_of(cast(Mapping[str, Any], run.run_config or {})),  # a partitioned job's config too
        execution_id=execution_id,
        workflow_version=int(version) if version and version.isdigit() else None,
        metadata={"trigger": _trigger(run), "job_name": run.job_name},
    )
    spec = repository.spec_of(workflow_id, execution.workflow_version)
    for column, value in partition_columns(spec, run.tags).items():  # dagster/partition: its time window
        setattr(execution, column, value)
    return execution, node_states


def node_row_id(execution_id: str, node_id: str) -> str:
    """The id of a node-state row the mirror adds (a ``for_each`` item's): the same in every process, so two mirrors
    adding it write one row."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{execution_id}/node/{node_id}"))


def added_node_rows(execution_id: str, nodes: list[NodeView], now: datetime) -> list[dict[str, Any]]:
    """The rows of node states the reducer made (``for_each`` items), for ``upsert`` on their id."""
    return [
        {
            "id": node_row_id(execution_id, node.node_id),
            "execution_id": execution_id,
            "node_id": node.node_id,
            "node_name": node.node_name,
            "node_type": node.node_type,
            "max_retries": node.max_retries,
            "quality_threshold": node.quality_threshold,
            **{f: getattr(node, f) for f in NODE_FIELDS},
            "created_at": now,
            "updated_at": now,
        }
        for node in nodes
    ]


def new_run_row(run: DagsterRun, execution_id: str, created: datetime) -> ExecutionRun:
    """The ``execution_runs`` row registering ``run`` (not added to the session)."""
    return ExecutionRun(
        run_id=run.run_id,
        execution_id=execution_id,
        parent_run_id=run.parent_run_id or run.tags.get(PARENT_RUN_TAG),
        root_run_id=run.root_run_id or run.tags.get(ROOT_RUN_TAG) or run.run_id,
        kind=_kind(run),
        trigger=_trigger(run),
        status=WorkflowStatus.PENDING,  # the column's default, set here so the row reads the same before a flush
        dagster_status=run.status.value,
        created_at=created,
        last_storage_id=0,
    )


def load_view(session: Session, execution_id: str) -> ExecutionView:
    """The execution's rows as they are in the tables (also when this session already holds them: the rows are
    written back with Core statements, which leave the session's objects as they were)."""
    fresh = {"populate_existing": True}
    stmt = for_update(session, select(WorkflowExecution).where(WorkflowExecution.id == execution_id))
    execution = session.scalars(stmt.execution_options(**fresh)).one()
    node_rows = list(
        session.scalars(select(NodeState).where(NodeState.execution_id == execution_id).execution_options(**fresh))
    )
    run_rows = list(
        session.scalars(
            select(ExecutionRun).where(ExecutionRun.execution_id == execution_id).execution_options(**fresh)
        )
    )
    # Kept for the caller (``live_view.view_for`` reads the node rows' ids from them).
    session.info.setdefault(LOADED_ROWS, {})[execution_id] = (execution, node_rows, run_rows)
    nodes = {
        row.node_id: NodeView(
            node_id=row.node_id,
            node_name=row.node_name,
            node_type=row.node_type,
            max_retries=row.max_retries,
            quality_threshold=row.quality_threshold,
            **{f: getattr(row, f) for f in NODE_FIELDS},
        )
        for row in node_rows
    }
    runs = {row.run_id: run_view(row) for row in run_rows}
    view = ExecutionView(
        execution_id=execution.id,
        workflow_id=execution.workflow_id,
        nodes=nodes,
        runs=runs,
        global_context=execution.global_context or {},
        **{f: getattr(execution, f) for f in EXECUTION_FIELDS},
    )
    view.total_nodes = len(nodes) or execution.total_nodes
    return view


def run_view(row: ExecutionRun) -> RunView:
    return RunView(
        run_id=row.run_id,
        order=row.created_at.timestamp(),
        kind=row.kind,
        parent_run_id=row.parent_run_id,
        root_run_id=row.root_run_id,
        status=row.status,
        dagster_status=row.dagster_status,
        trigger=row.trigger,
        started_at=row.started_at,
        completed_at=row.completed_at,
    )


def insert_events(session: Session, events: dict[str, list[EventRow]]) -> None:
    """Insert the event rows of executions (execution id -> rows), skipping those already stored, in one statement."""
    rows = [
        {
            "execution_id": execution_id,
            "event_type": e.event_type,
            "node_id": e.node_id,
            "message": e.message,
            "data": e.data,
            "timestamp": e.timestamp,
            "dagster_run_id": e.run_id,
            "dagster_storage_id": e.storage_id,
            "dagster_event_part": e.part,
        }
        for execution_id, execution_events in events.items()
        for e in execution_events
    ]
    upsert(session, ExecutionEvent.__table__, rows)
    written = [execution_id for execution_id, execution_events in events.items() if execution_events]
    notify(session, NOTIFY_CHANNEL, written)  # wakes WebSocket streams of every API instance (PostgreSQL only)


def upsert_artifacts(session: Session, execution_id: str, artifacts: list[ArtifactRow], now: datetime) -> None:
    """One row per (execution, node, path, run): a later run that reports the same path adds its own row (with
    what the file held then), so no run's record is overwritten; a replay of the same run refreshes its row."""
    for a in {(a.node_id, a.path, a.run_id): a for a in artifacts}.values():
        stmt = insert_for(session, Artifact.__table__).values(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{execution_id}/{a.node_id}/{a.path}@{a.run_id}")),
            execution_id=execution_id,
            node_id=a.node_id,
            artifact_type="file",
            name=a.name,
            file_path=a.path,
            content_type=a.content_type,
            size_bytes=a.size_bytes,
            sha256=a.sha256,
            metadata={},
            dagster_run_id=a.run_id,
            created_at=now,
        )
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=ARTIFACT_KEY, set_={"size_bytes": a.size_bytes, "sha256": a.sha256}
            )
        )
