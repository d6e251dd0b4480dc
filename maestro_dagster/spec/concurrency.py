"""The ``concurrency:`` block of a workflow and the ``pool:`` of a node: how many runs of a workflow may be in
progress at once, and which shared resource a node's op takes a slot of.

``concurrency: {limit: N, on_limit: queue | skip}``: at most ``N`` runs of the workflow are in progress
(starting, started, cancelling); with ``queue`` (the default) a further launch waits in Dagster's run queue,
with ``skip`` it is not run at all and its execution is recorded ``cancelled`` with a ``workflow_skipped`` event.
The limit is compiled onto the job's tags (``tags.TAG_CONCURRENCY_LIMIT``, ``tags.TAG_ON_LIMIT``) and held by
the run coordinator (``maestro_dagster.launcher.coordinator``) for every submitted run.

``pool: gpu`` puts the node's op in the Dagster pool ``gpu``: its steps, across all runs, take a slot of it.
How many slots a pool has is the deployment's (``MAESTRO_POOLS``), never the definition's.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_CONCURRENCY_LIMIT = 1000
"""The highest ``concurrency.limit`` a definition may set."""


OnLimit = Literal["queue", "skip"]


class ConcurrencySpec(BaseModel):
    """``concurrency: {limit: 2, on_limit: queue}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(
        ge=1,
        le=MAX_CONCURRENCY_LIMIT,
        strict=True,
        description=f"Runs of the workflow that may be in progress at once, 1..{MAX_CONCURRENCY_LIMIT}.",
    )
    on_limit: OnLimit = Field(
        "queue",
        description="'queue': a launch past the limit waits in Dagster's run queue; 'skip': it is not run and its "
        "execution is recorded cancelled ('skipped: ...') with a workflow_skipped event.",
    )
