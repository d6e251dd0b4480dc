"""Compile workflow definitions into Dagster jobs (pure: no database, no network)."""

from maestro_dagster.compiler.envelope import NodeResult
from maestro_dagster.compiler.job import build_job, node_id_by_step_key, retry_policy_for
from maestro_dagster.compiler.node import OUTPUT_NAME
from maestro_dagster.compiler.runtime import RESOURCE_KEY, NodeRuntime, plain_runtime, runtime_from_context
from maestro_dagster.tags import (  # re-exported: the compiler's names for what its ops and runs carry
    META_ARTIFACTS,
    META_CONDITION,
    META_INPUTS,
    META_OUTPUT,
    META_QUALITY,
    META_STATUS,
    TAG_EXECUTION_ID,
    TAG_TRIGGER,
    TAG_WORKFLOW_ID,
    TAG_WORKFLOW_VERSION,
    execution_id_of_run,
)

__all__ = [
    "META_ARTIFACTS",
    "META_CONDITION",
    "META_INPUTS",
    "META_OUTPUT",
    "META_QUALITY",
    "META_STATUS",
    "OUTPUT_NAME",
    "RESOURCE_KEY",
    "TAG_EXECUTION_ID",
    "TAG_TRIGGER",
    "TAG_WORKFLOW_ID",
    "TAG_WORKFLOW_VERSION",
    "NodeResult",
    "NodeRuntime",
    "build_job",
    "execution_id_of_run",
    "node_id_by_step_key",
    "plain_runtime",
    "retry_policy_for",
    "runtime_from_context",
]
