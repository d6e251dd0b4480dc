"""The states Maestro records (stored in its tables with the original's lower-case values) and the progress
arithmetic over them: a leaf, so the pure mirror core (``mirror.model``, ``mirror.reducer``) needs no database."""

from __future__ import annotations

from enum import StrEnum


class WorkflowStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.CANCELLED)


ACTIVE_STATUSES = (WorkflowStatus.RUNNING, WorkflowStatus.PAUSED)


class NodeStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    BLOCKED = "blocked"


class EventType(StrEnum):
    WORKFLOW_STARTED = "workflow_started"
    WORKFLOW_COMPLETED = "workflow_completed"
    WORKFLOW_FAILED = "workflow_failed"
    WORKFLOW_CANCELLED = "workflow_cancelled"
    WORKFLOW_PAUSED = "workflow_paused"
    WORKFLOW_RESUMED = "workflow_resumed"
    NODE_STARTED = "node_started"
    NODE_COMPLETED = "node_completed"
    NODE_FAILED = "node_failed"
    NODE_RETRY = "node_retry"
    NODE_SKIPPED = "node_skipped"
    NODE_BLOCKED = "node_blocked"
    ARTIFACT_CREATED = "artifact_created"
    SLA_MISSED = "sla_missed"  # a Dagster engine event marked maestro/sla_missed (compiler/sla.py)
    WORKFLOW_SKIPPED = "workflow_skipped"  # an engine event marked maestro/skipped (launcher/concurrency.py)


class RunKind(StrEnum):
    """How a Dagster run belongs to its execution."""

    INITIAL = "initial"  # the root run
    RETRY = "retry"  # a re-execution launched by Dagster's run retries
    RESUME = "resume"  # a re-execution from failure (UI, `maestro resume`, API)
    REPLAY = "replay"  # a re-execution of a node and its descendants (`maestro resume --from`, API from_node)


class RequestStatus(StrEnum):
    """State of a row of ``execution_requests``."""

    PENDING = "pending"  # inserted, not picked up yet
    LAUNCHED = "launched"  # a run was requested; ``execution_id`` is set
    ERROR = "error"  # refused; ``error`` says why


def calculate_progress(total: int, completed: int) -> float:
    """The original's formula: ``round(completed / total * 100, 2)``, 0.0 when total is 0."""
    return round(completed / total * 100, 2) if total else 0.0
