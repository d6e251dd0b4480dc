"""Sensor declarations of a workflow definition (``sensors:``): what starts an execution besides a person.

Three kinds, told apart by ``type``: ``file`` (new or changed files matching a glob), ``workflow_completed``
(an execution of another workflow reached one of the listed statuses) and ``request_queue`` (rows of the
``execution_requests`` table for this workflow). Schedules (``schedules:``) are ``ScheduleSpec`` in
``models.py``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from maestro_dagster.names import ID_PATTERN

TRIGGER_NAME_PATTERN = r"^[A-Za-z0-9_]{1,64}$"
UpstreamStatus = Literal["completed", "failed", "cancelled"]


def _completed_only() -> list[UpstreamStatus]:
    return ["completed"]


class _Sensor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str | None = Field(None, pattern=TRIGGER_NAME_PATTERN, description="Unique in the workflow.")
    enabled: bool = Field(False, description="Default status of the Dagster sensor (false: stopped).")
    minimum_interval_seconds: int = Field(5, ge=1, le=86400, description="Seconds between evaluations.")
    initial_context: dict[str, Any] = Field(default_factory=dict, description="Base of the runs' initial_context.")


class FileSensorSpec(_Sensor):
    """One execution per new file (or new modification time) matching ``pattern`` under ``directory``."""

    type: Literal["file"]
    directory: str = Field(description="Directory to watch (relative paths are from the working directory).")
    pattern: str = Field("*", description="Glob, e.g. '*.csv' or '**/*.json'.")


class WorkflowCompletedSensorSpec(_Sensor):
    """One execution per execution of ``workflow_id`` that reaches one of ``statuses``."""

    type: Literal["workflow_completed"]
    workflow_id: str = Field(pattern=ID_PATTERN, description="The upstream workflow.")
    statuses: list[UpstreamStatus] = Field(default_factory=_completed_only)
    context: dict[str, str] | None = Field(
        None,
        description="Projection of the upstream final_context: new key -> dotted path "
        "(e.g. {report: 'outputs.write_report.stdout_tail'}); null passes the whole final_context.",
    )


class RequestQueueSensorSpec(_Sensor):
    """Launches the ``execution_requests`` rows for this workflow (the request id is the run key)."""

    type: Literal["request_queue"]
    batch_size: int = Field(20, ge=1, le=500, description="Requests launched per evaluation at most.")


SensorSpec = Annotated[
    FileSensorSpec | WorkflowCompletedSensorSpec | RequestQueueSensorSpec, Field(discriminator="type")
]
