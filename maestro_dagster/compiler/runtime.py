"""The run-time side every op sees: the ``maestro`` resource, run tags and the execution id of a run.

The resource carries the execution's ``initial_context`` (job-level run config), its execution id (from
the ``maestro/execution_id`` tag, else derived from the root run, so UI and ``dagster job execute`` launches
get one too), and the settings. It knows nothing of the database: mirroring is the executor's job
(``maestro_dagster.mirror.live``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster import Field, InitResourceContext, Permissive, resource

from maestro_dagster.settings import Settings, get_settings
from maestro_dagster.tags import (  # noqa: F401 - re-exported: the compiler's names for the run tags
    PARENT_RUN_TAG,
    RESOURCE_KEY,
    ROOT_RUN_TAG,
    TAG_EXECUTION_ID,
    TAG_NODE_ID,
    TAG_TRIGGER,
    TAG_WORKFLOW_ID,
    TAG_WORKFLOW_VERSION,
    execution_id_of_run,
)

RUNTIME_CONFIG_SCHEMA = {
    "initial_context": Field(
        Permissive(), is_required=False, default_value={}, description="The execution's initial context."
    )
}


@dataclass
class NodeRuntime:
    """What an op needs beside its inputs."""

    initial_context: dict[str, Any]
    execution_id: str
    workflow_id: str
    run_id: str
    settings: Settings = field(default_factory=get_settings)

    def artifacts_dir(self, node_id: str) -> Path:
        """``<artifacts dir>/<execution id>/<run id>/<node id>``: each run of an execution (a resume, a
        "Re-execute all") writes its own files, so a later run never overwrites an earlier run's artifacts.
        Retries within a run share the directory (only a completed attempt's files are reported)."""
        return self.settings.artifacts_dir / self.execution_id / self.run_id / node_id


def runtime_from_context(init_context: InitResourceContext, cls: type[NodeRuntime] = NodeRuntime) -> NodeRuntime:
    run = init_context.dagster_run
    config = init_context.resource_config or {}
    if run is None:  # building the resource outside a run (e.g. direct invocation in tests)
        return cls(dict(config.get("initial_context") or {}), "exec_adhoc", "adhoc", "adhoc")
    return cls(
        initial_context=dict(config.get("initial_context") or {}),
        execution_id=execution_id_of_run(init_context.instance, run),
        workflow_id=run.tags.get(TAG_WORKFLOW_ID) or run.job_name,
        run_id=run.run_id,
    )


@resource(config_schema=RUNTIME_CONFIG_SCHEMA, description="Maestro run context (no mirroring).")
def plain_runtime(init_context: InitResourceContext) -> NodeRuntime:
    return runtime_from_context(init_context)
