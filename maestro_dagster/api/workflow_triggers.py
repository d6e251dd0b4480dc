"""A workflow's schedules and sensors as ``GET /api/workflows/{id}/triggers`` shows them: read from its stored
definition (named as ``triggers.build`` names them in Dagster), with the state Dagster reports for each.

The states come from the webserver (``DagsterGateway.trigger_states``); when it cannot answer, every state is
``unknown`` and ``state_error`` says why in our words (Dagster's text goes to the server log only): the answer is
still 200.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from maestro_dagster.api.schemas import TriggerResponse, TriggersResponse
from maestro_dagster.db.repositories import RepositoryFactory
from maestro_dagster.defs_store import load_spec
from maestro_dagster.errors import DagsterUnavailableError, MaestroError
from maestro_dagster.executions.gateway import DagsterGateway
from maestro_dagster.spec import WorkflowSpec
from maestro_dagster.triggers.build import schedule_name, sensor_name

_STATES = {"running": "running", "stopped": "stopped"}  # Dagster's instigation statuses, lower-cased


def _sensor_detail(sensor: Any, spec: WorkflowSpec) -> str:
    if sensor.type == "file":
        return f"file: {sensor.pattern!r} in {sensor.directory}"
    if sensor.type == "workflow_completed":
        return f"workflow_completed: {sensor.workflow_id} reaching {', '.join(sensor.statuses)}"
    return f"request_queue: execution requests for {spec.id}"


def declared(spec: WorkflowSpec) -> list[TriggerResponse]:
    """The definition's schedules then sensors, each with its Dagster name; states ``unknown``."""
    found = [
        TriggerResponse(
            kind="schedule",
            name=schedule_name(spec, i),
            label=s.name or str(i),
            detail=f"{s.cron} ({s.timezone})",
            default_enabled=s.enabled,
            state="unknown",
        )
        for i, s in enumerate(spec.schedules)
    ]
    found += [
        TriggerResponse(
            kind="sensor",
            name=sensor_name(spec, i),
            label=s.name or f"{s.type}_{i}",
            detail=_sensor_detail(s, spec),
            default_enabled=s.enabled,
            state="unknown",
        )
        for i, s in enumerate(spec.sensors)
    ]
    return found


def stored_triggers(session: Session, workflow_id: str) -> tuple[list[TriggerResponse], str | None]:
    """The stored definition's triggers, or none and why when it is not valid (Dagster then has none of them)."""
    row = RepositoryFactory(session).workflow.require(workflow_id)
    try:
        return declared(load_spec(row)), None
    except MaestroError:
        return [], (
            f"workflow {workflow_id} is not valid, so Dagster has none of its schedules or sensors: fix the errors "
            f"GET /api/workflows/{workflow_id} lists and save it again."
        )


def with_states(
    workflow_id: str, triggers: list[TriggerResponse], problem: str | None, gateway: DagsterGateway
) -> TriggersResponse:
    """The answer: the states Dagster reports (asked only when there is something to ask about)."""
    if triggers and problem is None:
        try:
            states = gateway.trigger_states()
        except DagsterUnavailableError as exc:
            problem = exc.message
        else:
            state = {t.name: _STATES.get(states.get(t.name, ""), "unknown") for t in triggers}
            triggers = [t.model_copy(update={"state": state[t.name]}) for t in triggers]
            missing = [t.name for t in triggers if t.state == "unknown"]
            if missing:
                problem = (
                    f"Dagster has not loaded {', '.join(missing)}: reload the code location (Dagster UI, Deployment), "
                    "or save the definition again through the API."
                )
    return TriggersResponse(workflow_id=workflow_id, triggers=triggers, state_error=problem)
