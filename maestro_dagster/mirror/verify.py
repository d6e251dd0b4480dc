"""``mirror verify``: recompute an execution from Dagster's event log and list every difference.

The expected rows come from replaying every run of the execution, in launch order, through the same
reducer the mirror uses, starting from the definition (every node pending). Compared: the set of runs,
event rows (missing, unexpected), node states (status, attempts, error and its type, times and duration,
outputs), the execution (status, counts, progress, error and failed node; its partition columns against its
first run's ``dagster/partition`` tag) and the artifact rows the runs reported (one per node, path and run, with
its size and sha256; rows not made by a run are not compared).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dagster import DagsterInstance
from sqlalchemy import select
from sqlalchemy.orm import Session

from maestro_dagster.db.models import Artifact, ExecutionEvent, ExecutionRun, NodeState, WorkflowExecution
from maestro_dagster.db.repositories import ExecutionRepository
from maestro_dagster.mirror.model import ArtifactRow, ExecutionView, NodeView, RunView
from maestro_dagster.mirror.projector import apply_events, run_facts
from maestro_dagster.mirror.source import read_events
from maestro_dagster.spec.partitions import partition_columns

NODE_COMPARED = (
    "status", "attempt_count", "error_message", "error_type", "started_at", "completed_at", "duration_seconds",
    "outputs",
)  # fmt: skip
EXECUTION_COMPARED = (
    "status", "total_nodes", "completed_nodes", "failed_nodes", "progress_percent", "error_message", "error_node_id",
)  # fmt: skip


@dataclass(frozen=True)
class Difference:
    execution_id: str
    what: str

    def __str__(self) -> str:
        return f"{self.execution_id}: {self.what}"


def _fresh_view(execution: WorkflowExecution, states: list[NodeState]) -> ExecutionView:
    nodes = {
        s.node_id: NodeView(
            node_id=s.node_id, node_type=s.node_type, max_retries=s.max_retries, quality_threshold=s.quality_threshold
        )
        for s in states
    }
    return ExecutionView(execution.id, execution.workflow_id, nodes, {}, global_context=execution.global_context or {})


def verify_execution(session: Session, instance: DagsterInstance, execution_id: str) -> list[Difference]:
    diffs: list[Difference] = []

    def diff(what: str) -> None:
        diffs.append(Difference(execution_id, what))

    execution = session.get(WorkflowExecution, execution_id)
    if execution is None:
        return [Difference(execution_id, "execution row missing")]
    states = list(session.scalars(select(NodeState).where(NodeState.execution_id == execution_id)))
    runs = sorted(
        session.scalars(select(ExecutionRun).where(ExecutionRun.execution_id == execution_id)),
        key=lambda r: r.created_at,
    )
    expected = _fresh_view(execution, states)
    expected_events = {}
    expected_artifacts: dict[tuple[str, str, str], ArtifactRow] = {}
    for row in runs:
        dagster_run = instance.get_run_by_id(row.run_id)
        if dagster_run is None:
            diff(f"run {row.run_id} is in execution_runs but not in Dagster")
            continue
        expected.runs[row.run_id] = RunView(
            row.run_id, row.created_at.timestamp(), row.kind, row.parent_run_id, row.root_run_id
        )
        reducer = apply_events(expected, read_events(instance, row.run_id), {row.run_id: run_facts(dagster_run)})
        for e in reducer.events:
            expected_events[(e.run_id, e.storage_id, e.part)] = e
        for a in reducer.artifacts:
            expected_artifacts[(a.node_id, a.path, a.run_id)] = a

    stored = list(session.scalars(select(ExecutionEvent).where(ExecutionEvent.execution_id == execution_id)))
    stored_keys: dict[tuple[str | None, int | None, int], ExecutionEvent] = {}
    for row_event in stored:
        key = (row_event.dagster_run_id, row_event.dagster_storage_id, row_event.dagster_event_part)
        if row_event.dagster_storage_id is not None and key in stored_keys:
            diff(f"duplicate event {row_event.event_type.value} {key}")
        stored_keys[key] = row_event
    for key, e in expected_events.items():
        got = stored_keys.get(key)
        if got is None:
            diff(f"missing event {e.event_type.value} node={e.node_id} (run {key[0][:8]}, storage id {key[1]})")
        elif got.event_type != e.event_type or got.node_id != e.node_id:
            diff(f"event {key} is {got.event_type.value}/{got.node_id}, expected {e.event_type.value}/{e.node_id}")
    for key, row_event in stored_keys.items():
        if key[1] is not None and key not in expected_events:
            diff(f"unexpected event {row_event.event_type.value} node={row_event.node_id} {key}")

    by_node = {s.node_id: s for s in states}
    for node_id, want in expected.nodes.items():
        got_state = by_node.get(node_id)
        if got_state is None:  # a for_each item's row the mirror never added
            diff(f"node {node_id} has no node_states row")
            continue
        for field in NODE_COMPARED:
            if getattr(got_state, field) != getattr(want, field):
                diff(f"node {node_id}.{field} is {getattr(got_state, field)!r}, expected {getattr(want, field)!r}")
    if runs:
        for field in EXECUTION_COMPARED:
            if getattr(execution, field) != getattr(expected, field):
                diff(f"execution.{field} is {getattr(execution, field)!r}, expected {getattr(expected, field)!r}")
    _compare_artifacts(session, execution_id, {r.run_id for r in runs}, expected_artifacts, diff)
    if runs and (first := instance.get_run_by_id(runs[0].run_id)) is not None:  # the window of its first run
        spec = ExecutionRepository(session).spec_of(execution.workflow_id, execution.workflow_version)
        for field, window in partition_columns(spec, first.tags).items():
            if getattr(execution, field) != window:
                diff(f"execution.{field} is {getattr(execution, field)!r}, expected {window!r}")
    return diffs


def _compare_artifacts(
    session: Session,
    execution_id: str,
    run_ids: set[str],
    expected: dict[tuple[str, str, str], ArtifactRow],
    diff: Callable[[str], None],
) -> None:
    """The artifact rows of the execution's runs against what their events reported."""
    rows = session.scalars(select(Artifact).where(Artifact.execution_id == execution_id))
    stored = {(a.node_id, a.file_path, a.dagster_run_id): a for a in rows if a.dagster_run_id in run_ids}
    for key, want in expected.items():
        got = stored.get(key)
        if got is None:
            diff(f"missing artifact {key[1]} of node {key[0]} (run {key[2][:8]})")
        elif (got.size_bytes, got.sha256) != (want.size_bytes, want.sha256):
            diff(f"artifact {key[1]} (run {key[2][:8]}) has size/sha256 {got.size_bytes}/{got.sha256}, expected "
                 f"{want.size_bytes}/{want.sha256}")  # fmt: skip
    for extra in stored.keys() - expected.keys():  # a stored row's path may be None
        diff(f"unexpected artifact {extra[1]} of node {extra[0]} (run {extra[2][:8]})")


def verify_executions(session: Session, instance: DagsterInstance, execution_ids: Iterable[str]) -> list[Difference]:
    out: list[Difference] = []
    for execution_id in execution_ids:
        out.extend(verify_execution(session, instance, execution_id))
    return out


def executions_of_runs(session: Session, run_ids: Iterable[str]) -> list[str]:
    ids = list(run_ids)
    rows = session.scalars(select(ExecutionRun.execution_id).where(ExecutionRun.run_id.in_(ids))).all()
    return sorted(set(rows))
