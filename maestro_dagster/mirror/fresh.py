"""Finished runs whose execution does not exist yet (most of a catch-up): their rows, inserted once, final.

``ensure_execution`` followed by ``project`` would insert the execution and a pending state per node, read
them back, and update every one of them. Here the execution and its node states are built in memory exactly as
``ensure_execution`` builds them (``ExecutionRepository.new_rows``, ``new_run_row``), as ``load_view`` would
have read them, the run's events are applied by the same reducer, and the rows of a group of such runs are
inserted with their final values: the executions and runs in one flush, node states and events in a statement
each. The caller owns the transaction (and decides which runs qualify: see ``batch.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from dagster import DagsterRun
from sqlalchemy.orm import Session

from maestro_dagster.db.dialect import upsert
from maestro_dagster.db.models import NodeState
from maestro_dagster.db.repositories import WorkflowRepository
from maestro_dagster.mirror.model import DagsterEventIn, EventRow, ExecutionView, NodeView
from maestro_dagster.mirror.projector import MirrorResult, apply_events, run_facts
from maestro_dagster.mirror.store import (
    EXECUTION_FIELDS,
    NODE_FIELDS,
    added_node_rows,
    insert_events,
    new_execution,
    new_run_row,
    run_view,
    upsert_artifacts,
)
from maestro_dagster.tags import TAG_WORKFLOW_ID


@dataclass
class FreshRun:
    """A finished run, read in full (``events``), whose execution and ``execution_runs`` row do not exist."""

    run: DagsterRun
    execution_id: str
    created: datetime
    events: list[DagsterEventIn]


def write_fresh(session: Session, runs: list[FreshRun]) -> list[MirrorResult]:
    """Create each run's execution with the rows a full mirror pass of the run leaves; one result per run."""
    now = datetime.now(UTC)
    results: list[MirrorResult] = []
    rows: list[object] = []
    node_rows: list[dict] = []
    added_rows: list[dict] = []  # for_each items the reducer made (their own keys)
    events: dict[str, list[EventRow]] = {}
    artifacts = []
    stored: dict[str, bool] = {}  # workflow id -> is its definition stored (read once per call)
    for item in runs:
        run, execution_id = item.run, item.execution_id
        workflow_id = run.tags[TAG_WORKFLOW_ID]
        if workflow_id not in stored:
            stored[workflow_id] = WorkflowRepository(session).get(workflow_id) is not None
        if not stored[workflow_id]:
            results.append(MirrorResult(run.run_id, execution_id, skipped_reason="workflow definition not stored"))
            continue
        execution, node_values = new_execution(session, run, execution_id, workflow_id)
        run_row = new_run_row(run, execution_id, item.created)
        view = ExecutionView(
            execution_id=execution_id,
            workflow_id=workflow_id,
            nodes={
                v["node_id"]: NodeView(
                    node_id=v["node_id"],
                    node_name=v["node_name"],
                    node_type=v["node_type"],
                    max_retries=v["max_retries"],
                    quality_threshold=v["quality_threshold"],
                    status=v["status"],
                    attempt_count=v["attempt_count"],
                )
                for v in node_values
            },
            runs={run.run_id: run_view(run_row)},
            global_context=execution.global_context or {},
        )
        view.total_nodes = len(view.nodes) or execution.total_nodes
        reducer = apply_events(view, item.events, {run.run_id: run_facts(run)})
        for f in EXECUTION_FIELDS:
            setattr(execution, f, getattr(view, f))
        ran = view.runs[run.run_id]
        run_row.status, run_row.started_at, run_row.completed_at = (
            ran.status,
            ran.started_at,
            ran.completed_at,
        )
        run_row.dagster_status = run.status.value
        run_row.last_storage_id = item.events[-1].storage_id if item.events else 0
        run_row.mirror_complete = True
        rows += [execution, run_row]
        for v in node_values:
            node = view.nodes[v["node_id"]]
            node_rows.append({**v, **{f: getattr(node, f) for f in NODE_FIELDS}, "updated_at": now})
        declared = {v["node_id"] for v in node_values}
        added = [node for node_id, node in view.nodes.items() if node_id not in declared]
        added_rows += added_node_rows(execution_id, added, now)
        events[execution_id] = reducer.events
        artifacts.append((execution_id, reducer.artifacts))
        results.append(MirrorResult(run.run_id, execution_id, events_read=len(item.events), complete=True))
    session.add_all(rows)
    session.flush()
    upsert(session, NodeState.__table__, node_rows)
    upsert(session, NodeState.__table__, added_rows)
    insert_events(session, events)
    for execution_id, execution_artifacts in artifacts:
        upsert_artifacts(session, execution_id, execution_artifacts, now)
    return results
