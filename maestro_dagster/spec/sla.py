"""The ``sla:`` block of a workflow (top level) and of a node: how long it may run, and what a miss does.

``max_duration_seconds`` counts, for a node, from the start of each of its attempts; for the workflow, from the
execution's first start (a resumed execution keeps it). ``on_miss: warn`` records an ``sla_missed`` event while
the execution runs on; ``on_miss: fail`` records it and fails the node (no retry) or, for the workflow, the node
that is running (or the next to start), so the execution ends failed with "SLA missed: ...". How it runs:
``maestro_dagster.compiler.sla``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_SLA_SECONDS = 7 * 86400
"""The longest SLA a definition may set (7 days): a longer one is almost surely a unit mistake (ms for s)."""

OnMiss = Literal["warn", "fail"]


class SLASpec(BaseModel):
    """``sla: {max_duration_seconds: 300, on_miss: warn}``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    max_duration_seconds: float = Field(
        description=f"Seconds it may run before the SLA is missed, more than 0 and at most {MAX_SLA_SECONDS} (7 days)."
    )
    on_miss: OnMiss = Field(
        "warn",
        description="'warn': record an sla_missed event and go on; 'fail': record it and fail (no retry) with "
        "'SLA missed: ...'.",
    )

    @field_validator("max_duration_seconds")
    @classmethod
    def _check_limit(cls, value: float) -> float:
        if not 0 < value <= MAX_SLA_SECONDS:
            raise ValueError(
                f"max_duration_seconds must be more than 0 and at most {MAX_SLA_SECONDS} (7 days): write the "
                "seconds it may run before its SLA is missed, e.g. 300"
            )
        return value


META_SLA_MISSED = "maestro/sla_missed"
"""Metadata key of the Dagster engine event that records a missed SLA (its value: scope, node_id, limit_seconds,
elapsed_seconds, on_miss); the mirror turns that event into an ``sla_missed`` row."""
SCOPE_WORKFLOW = "workflow"
SCOPE_NODE = "node"
