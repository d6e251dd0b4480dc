"""Plain data the mirror works on: Dagster events as read, and the in-memory view of one execution.

``DagsterEventIn`` is a Dagster event reduced to what the mirror needs (so the reducer can be tested and
reused by ``mirror verify`` without a database). ``ExecutionView`` holds the state of one execution's
rows; the reducer (``reducer.py``) changes it and says which event and artifact rows to insert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from maestro_dagster.spec.models import DEFAULT_QUALITY_THRESHOLD
from maestro_dagster.states import EventType, NodeStatus, RunKind, WorkflowStatus, calculate_progress

TERMINAL_NODE = (NodeStatus.COMPLETED, NodeStatus.FAILED, NodeStatus.SKIPPED, NodeStatus.BLOCKED)


@dataclass(frozen=True)
class DagsterEventIn:
    """One Dagster event record of a run."""

    run_id: str
    storage_id: int
    event_type: str  # DagsterEventType value, e.g. "STEP_START", "PIPELINE_SUCCESS"
    timestamp: datetime
    step_key: str | None = None
    message: str = ""
    attempt: int | None = None  # STEP_START: 1; STEP_RESTARTED: the attempt it starts
    error_message: str | None = None
    error_type: str | None = None
    seconds_to_wait: float | None = None
    duration_ms: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class NodeView:
    node_id: str
    node_name: str | None = None
    node_type: str | None = None
    status: NodeStatus = NodeStatus.PENDING
    attempt_count: int = 0
    run_attempt: int = 0
    max_retries: int = 0
    last_run_id: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_seconds: float | None = None
    error_message: str | None = None
    error_type: str | None = None
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    quality_score: float | None = None
    quality_threshold: float | None = DEFAULT_QUALITY_THRESHOLD
    contract_fulfilled: bool | None = None


@dataclass
class RunView:
    run_id: str
    order: float  # Dagster's create timestamp: runs of an execution are ordered by it
    kind: RunKind = RunKind.INITIAL
    parent_run_id: str | None = None
    root_run_id: str | None = None
    status: WorkflowStatus = WorkflowStatus.PENDING
    dagster_status: str | None = None
    trigger: str | None = None
    pause_requested: bool = False  # these three: the run's ``RunFacts`` as last given (see ``RunFacts``)
    cancelled_by: str | None = None
    termination_requested: bool = False
    selected_steps: frozenset[str] | None = None  # the steps a step-selection re-execution runs (``RunFacts``)
    started_at: datetime | None = None
    completed_at: datetime | None = None


@dataclass(frozen=True)
class RunFacts:
    """What the mirror needs of a run beside its events: who stopped it, from its tags and status.

    Read after the events that use them (a pause tag is set before the termination it asks for, so a read after
    the step's interruption or the run's end sees it). ``pause_requested``: ``maestro/pause_requested`` is
    ``true``; ``cancelled_by``: the ``maestro/cancelled_by`` tag (who asked, as its setter wrote it);
    ``termination_requested``: the run was ``CANCELING`` or ``CANCELED`` (someone asked Dagster to stop it);
    ``selected_steps``: the run's ``step_keys_to_execute`` (None: every step).
    """

    pause_requested: bool = False
    cancelled_by: str | None = None
    termination_requested: bool = False
    selected_steps: frozenset[str] | None = None


@dataclass
class ExecutionView:
    execution_id: str
    workflow_id: str
    nodes: dict[str, NodeView]
    runs: dict[str, RunView]
    status: WorkflowStatus = WorkflowStatus.PENDING
    global_context: dict[str, Any] = field(default_factory=dict)
    current_phase: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    paused_at: datetime | None = None
    error_message: str | None = None
    error_node_id: str | None = None
    final_context: dict[str, Any] | None = None
    total_nodes: int = 0
    completed_nodes: int = 0
    failed_nodes: int = 0
    progress_percent: float = 0.0

    def latest_run_id(self) -> str | None:
        return max(self.runs.values(), key=lambda r: r.order).run_id if self.runs else None

    def refresh_counts(self) -> None:
        self.total_nodes = len(self.nodes)
        self.completed_nodes = sum(n.status is NodeStatus.COMPLETED for n in self.nodes.values())
        self.failed_nodes = sum(n.status is NodeStatus.FAILED for n in self.nodes.values())
        self.progress_percent = calculate_progress(self.total_nodes, self.completed_nodes)


@dataclass(frozen=True)
class EventRow:
    """An ``execution_events`` row to insert (ignored if that Dagster event part is already stored)."""

    event_type: EventType
    node_id: str | None
    message: str
    data: dict[str, Any]
    timestamp: datetime
    run_id: str
    storage_id: int
    part: int = 0


@dataclass(frozen=True)
class ArtifactRow:
    node_id: str
    path: str
    name: str
    size_bytes: int | None
    sha256: str | None
    content_type: str | None
    run_id: str
