"""Compile workflow definitions into Dagster jobs (pure: no database, no network)."""

from maestro_dagster.compiler.envelope import NodeResult
from maestro_dagster.compiler.job import build_job, node_id_by_step_key, retry_policy_for
from maestro_dagster.compiler.node import OUTPUT_NAME
from maestro_dagster.compiler.runtime import RESOURCE_KEY, NodeRuntime, plain_runtime, runtime_from_context

__all__ = [
    "OUTPUT_NAME",
    "RESOURCE_KEY",
    "NodeResult",
    "NodeRuntime",
    "build_job",
    "node_id_by_step_key",
    "plain_runtime",
    "retry_policy_for",
    "runtime_from_context",
]
