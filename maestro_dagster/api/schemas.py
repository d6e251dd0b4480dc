"""Request and response models of the REST API (the original server's shapes where it had them)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_BIGINT = 2**63 - 1  # offsets and event ids are compared with 64-bit SQL integers


class WorkflowResponse(BaseModel):
    workflow_id: str
    name: str
    type: str
    nodes: int
    edges: int
    version: int
    valid: bool
    created_at: datetime
    updated_at: datetime
    last_execution_status: str | None = Field(
        None, description="The status of the workflow's most recent execution (by created_at); null when it has none"
    )
    last_execution_at: datetime | None = Field(None, description="When that execution was created")
    success_rate: float | None = Field(
        None,
        description="Percent (0-100) of the workflow's executions created in the last 30 days that ended completed, "
        "of those that ended completed or failed; null when none did",
    )


class WorkflowDetail(BaseModel):
    workflow_id: str
    name: str
    type: str
    version: int
    valid: bool
    errors: list[dict[str, Any]]
    nodes: list[dict[str, Any]] = Field(description="Nodes in the original UI shape")
    edges: list[dict[str, Any]] = Field(description="Edges in the original UI shape")
    definition: dict[str, Any] = Field(description="The stored definition document")
    dagster_job: str = Field(description="The Dagster job of this workflow (names.job_name)")
    dagster_location: str = Field(description="Its repository and code location as Dagster's UI writes them in URLs")


class WorkflowVersion(BaseModel):
    version: int
    content_hash: str
    valid: bool
    errors: list[dict[str, Any]]
    source: str | None
    created_at: datetime
    definition: dict[str, Any] | None = Field(None, description="The content stored as this version")


class ValidationResponse(BaseModel):
    valid: bool
    workflow_id: str | None
    errors: list[dict[str, Any]]


class ExecuteRequest(BaseModel):
    requirement: str | None = Field(None, max_length=10_000)
    initial_context: dict[str, Any] | None = None


class ExecuteResponse(BaseModel):
    execution_id: str
    workflow_id: str
    status: str
    started_at: datetime | None
    run_id: str | None = None


class BackfillRequest(BaseModel):
    """``POST /api/workflows/{id}/backfill``: the windows of its partitioned schedule that start in [from, to]."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: str = Field(alias="from", min_length=1, max_length=64, description="First window start, ISO date/time.")
    to: str = Field(min_length=1, max_length=64, description="Last window start, inclusive (a date: its whole day).")
    max_concurrent: int | None = Field(None, ge=1, le=100, description="Runs of this backfill in progress at most.")


class BackfillResponse(BaseModel):
    backfill_id: str = Field(description="maestro/backfill on each of its runs")
    dagster_backfill_id: str = Field(description="the Dagster backfill (Dagster UI: Overview -> Backfills)")
    workflow_id: str
    partition_keys: list[str]
    max_concurrent: int | None


class ResumeRequest(BaseModel):
    """The optional body of ``POST /api/executions/{id}/resume``: without ``from_node``, a resume from failure."""

    model_config = ConfigDict(extra="forbid")
    from_node: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        description="Replay this node and everything downstream of it (also of a completed execution), the other "
        "nodes' outputs reused",
    )


class ApproveRequest(BaseModel):
    approved: bool = True
    comment: str | None = Field(None, max_length=10_000)


class ArtifactResponse(BaseModel):
    id: str = Field(description="The artifacts row id (GET .../artifacts/{id}/content downloads it)")
    node_id: str
    artifact_type: str
    name: str
    file_path: str | None
    uri: str | None
    content_type: str | None
    size_bytes: int | None
    sha256: str | None
    created_at: datetime
    downloadable: bool = Field(description="Whether .../artifacts/{id}/content would serve it (api.artifact_files)")


class NodeStateResponse(BaseModel):
    node_id: str
    node_name: str | None
    node_type: str | None
    status: str
    attempt_count: int
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration: float | None = None
    inputs: dict[str, Any] | None = Field(
        None, description="What the node was given (node_states.inputs); null when not recorded"
    )
    outputs: dict[str, Any] | None = None
    artifacts: list[str] = []
    error: str | None = None
    error_type: str | None = None
    quality_score: float | None = None


class RunResponse(BaseModel):
    run_id: str
    kind: str
    status: str
    parent_run_id: str | None
    root_run_id: str | None
    started_at: datetime | None
    completed_at: datetime | None


class SlaMissedResponse(BaseModel):
    """A missed SLA of the execution: its node (null: the workflow's SLA), its limit and when it was missed."""

    node_id: str | None
    limit_seconds: float
    at: datetime


class ExecutionStatusResponse(BaseModel):
    execution_id: str
    workflow_id: str
    workflow_version: int | None
    status: str
    completed_nodes: int
    failed_nodes: int
    total_nodes: int
    progress_percent: float
    current_phase: str | None
    node_states: list[NodeStateResponse]
    runs: list[RunResponse]
    error_message: str | None
    error_node_id: str | None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    sla_missed: list[SlaMissedResponse] = []  # recorded while the execution runs (sla_missed events)


class ExecutionSummary(BaseModel):
    execution_id: str
    workflow_id: str
    status: str
    progress_percent: float
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime


class EventResponse(BaseModel):
    id: int
    type: str
    timestamp: datetime
    workflow_id: str
    execution_id: str
    node_id: str | None
    message: str | None
    data: dict[str, Any] | None
    run_id: str | None = Field(None, description="The Dagster run the event came from")


class ActionResponse(BaseModel):
    execution_id: str
    status: str
    run_id: str | None = None
    message: str


class ExecutorsResponse(BaseModel):
    builtin: list[str] = Field(description="Built-in executors a definition posted through the API may use")
    import_prefixes: list[str] = Field(description="Module prefixes custom executors may come from")


class TriggerResponse(BaseModel):
    kind: Literal["schedule", "sensor"]
    name: str = Field(description="The Dagster schedule or sensor name")
    label: str = Field(description="The definition's name of it, or its index form")
    detail: str
    default_enabled: bool
    state: Literal["running", "stopped", "unknown"]


class TriggersResponse(BaseModel):
    workflow_id: str
    triggers: list[TriggerResponse]
    state_error: str | None = Field(description="Why the states are unknown (null when Dagster answered)")


class DailyReportRow(BaseModel):
    day: date
    executions: int
    completed: int
    failed: int
    success_rate: float | None
    p95_duration_seconds: float | None


class FailingNodeRow(BaseModel):
    workflow_id: str
    node_id: str
    failures: int
    runs: int
