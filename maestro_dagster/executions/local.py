"""``maestro run`` / ``maestro resume`` (``--from``: a replay) in one call: an action through the
``LocalTransport``, to the end of the run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagster import DagsterInstance

from maestro_dagster.executions import actions
from maestro_dagster.executions.transport import LocalTransport
from maestro_dagster.settings import Settings, get_settings


@dataclass(frozen=True)
class LaunchResult:
    execution_id: str
    run_id: str
    success: bool


def run_workflow(
    instance: DagsterInstance,
    workflow_id: str,
    initial_context: dict[str, Any],
    *,
    trigger: str = "cli",
    in_process: bool = False,
    log_level: str | None = None,
    settings: Settings | None = None,
) -> LaunchResult:
    """Create an execution and run it to the end in this process (``log_level``: Dagster's console logs)."""
    settings = settings or get_settings()
    transport = LocalTransport(instance, settings, in_process=in_process, log_level=log_level)
    launched = actions.start(settings, transport, workflow_id, initial_context, trigger=trigger)
    return LaunchResult(launched.execution_id, launched.run_id, transport.succeeded(launched.run_id))


def resume_workflow(
    instance: DagsterInstance,
    execution_id: str,
    *,
    from_node: str | None = None,
    in_process: bool = False,
    log_level: str | None = None,
    settings: Settings | None = None,
) -> LaunchResult:
    """Re-execute the execution's latest run from failure, to the end; completed nodes are not run again. With
    ``from_node``: replay that node and its descendants (also of a completed execution), the others' outputs
    reused."""
    settings = settings or get_settings()
    transport = LocalTransport(instance, settings, in_process=in_process, log_level=log_level)
    launched = actions.resume(settings, transport, execution_id, from_node)
    return LaunchResult(launched.execution_id, launched.run_id, transport.succeeded(launched.run_id))
