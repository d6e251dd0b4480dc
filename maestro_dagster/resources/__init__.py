"""Dagster resources of the code location: ``maestro_runtime``, the run context every op uses, and
``node_outputs_io_manager``, the IO manager keeping op outputs as JSON in Maestro's database (``outputs.py``).

It is the compiler's run context; in a step subprocess it also makes the process end with its run's worker
(``maestro_dagster.mirror.live.exit_with_run_worker``), so a killed worker leaves no step running on.
"""

from dagster import InitResourceContext, resource

from maestro_dagster.compiler.runtime import RUNTIME_CONFIG_SCHEMA, NodeRuntime, runtime_from_context
from maestro_dagster.mirror.live import exit_with_run_worker
from maestro_dagster.resources.outputs import node_outputs_io_manager


@resource(config_schema=RUNTIME_CONFIG_SCHEMA, description="Maestro run context (mirrored by the executor).")
def maestro_runtime(init_context: InitResourceContext) -> NodeRuntime:
    if init_context.instance is not None:  # None only outside a run (and then there is no run to watch)
        exit_with_run_worker(init_context.instance, init_context.dagster_run)
    return runtime_from_context(init_context)


__all__ = ["maestro_runtime", "node_outputs_io_manager"]
