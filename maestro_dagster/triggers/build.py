"""Dagster schedules and sensors built from a definition's ``schedules:`` and ``sensors:``.

Names derive from the job and never change across reloads: ``<job>__schedule_<name or index>`` and
``<job>__sensor_<name or type_index>``. ``enabled: true`` makes one running by default; otherwise it is
stopped (Dagster's default) until turned on in the UI or with ``dagster schedule start`` /
``dagster sensor start``. Every run they request carries an execution id (tag ``maestro/execution_id``) and
``maestro/trigger`` (``schedule`` or ``sensor``), which the mirror records in the execution's metadata, and a
context checked against the workflow's ``inputs`` with their defaults filled in (``spec.inputs.apply_inputs``): a
context that does not satisfy them makes no request (a schedule's tick is skipped with the reason, a sensor logs
a warning, a queued request is marked ``error`` with it). A partitioned schedule requests time windows instead
(``triggers.partitioned``).
Targets are named, not built, so the repository stays lazy.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagster import (
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
)
from sqlalchemy import select

from maestro_dagster.db.models import ExecutionEvent, WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.defs_store import load_spec
from maestro_dagster.errors import MaestroError
from maestro_dagster.names import job_name, new_execution_id
from maestro_dagster.spec import ScheduleSpec, WorkflowSpec
from maestro_dagster.spec.inputs import InputError, apply_inputs
from maestro_dagster.spec.triggers import FileSensorSpec, RequestQueueSensorSpec, WorkflowCompletedSensorSpec
from maestro_dagster.states import EventType
from maestro_dagster.tags import launch_tags
from maestro_dagster.triggers.partitioned import partitioned_evaluator
from maestro_dagster.triggers.requests import take_requests

log = logging.getLogger(__name__)
STATUS_EVENTS = {
    "completed": EventType.WORKFLOW_COMPLETED,
    "failed": EventType.WORKFLOW_FAILED,
    "cancelled": EventType.WORKFLOW_CANCELLED,
}


def schedule_name(spec: WorkflowSpec, index: int) -> str:
    return f"{job_name(spec.id)}__schedule_{spec.schedules[index].name or index}"


def sensor_name(spec: WorkflowSpec, index: int) -> str:
    sensor = spec.sensors[index]
    return f"{job_name(spec.id)}__sensor_{sensor.name or f'{sensor.type}_{index}'}"


def _request(spec: WorkflowSpec, context: dict[str, Any], trigger: str, *, run_key: str | None = None,
             execution_id: str | None = None, at: datetime | None = None) -> RunRequest:  # fmt: skip
    context = apply_inputs(spec.inputs, context, workflow_id=spec.id)  # InputError: this request is not made
    execution_id = execution_id or new_execution_id(spec.id, at)
    return RunRequest(
        run_key=run_key,
        run_config={"initial_context": context},
        tags=launch_tags(execution_id, trigger),
    )


def _append(context: SensorEvaluationContext, requests: list[RunRequest], spec: WorkflowSpec,
            run_context: dict[str, Any], run_key: str) -> None:  # fmt: skip
    """A sensor's request, unless its context does not satisfy the inputs: then none, and a warning."""
    try:
        requests.append(_request(spec, run_context, "sensor", run_key=run_key))
    except InputError as exc:
        context.log.warning(f"run request not made: {exc.message}")


def build_schedule(spec: WorkflowSpec, index: int) -> ScheduleDefinition:
    schedule: ScheduleSpec = spec.schedules[index]

    def evaluate(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        at = context.scheduled_execution_time or datetime.now(UTC)
        try:
            return _request(spec, dict(schedule.initial_context), "schedule", at=at)
        except InputError as exc:  # validation refuses such a schedule; a definition stored before inputs existed
            return SkipReason(f"not launched: {exc.message}")

    return ScheduleDefinition(
        name=schedule_name(spec, index),
        cron_schedule=schedule.cron,
        execution_timezone=schedule.timezone,
        job_name=job_name(spec.id),
        execution_fn=partitioned_evaluator(spec, schedule) if schedule.partitioned else evaluate,
        default_status=DefaultScheduleStatus.RUNNING if schedule.enabled else DefaultScheduleStatus.STOPPED,
        description=f"{spec.id}: {schedule.cron} ({schedule.timezone})",
    )


def _file_sensor(spec: WorkflowSpec, sensor: FileSensorSpec):
    def evaluate(context: SensorEvaluationContext):
        base = Path(sensor.directory)
        if not base.is_dir():
            return SkipReason(f"directory {base} does not exist (yet)")
        seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
        current: dict[str, int] = {}
        requests: list[RunRequest] = []
        for path in sorted(p for p in base.glob(sensor.pattern) if p.is_file()):
            stat = path.stat()
            key = str(path.resolve())
            current[key] = stat.st_mtime_ns
            if seen.get(key) == stat.st_mtime_ns:
                continue
            file_info = {
                "path": key,
                "size_bytes": stat.st_size,
                "mtime": datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(),
            }
            context_ = {**sensor.initial_context, "file": file_info}
            _append(context, requests, spec, context_, f"{key}:{stat.st_mtime_ns}")
        context.update_cursor(json.dumps(current, sort_keys=True))
        return requests or SkipReason(f"no new or changed file matching {sensor.pattern!r} in {base}")

    return evaluate


def _project(final_context: dict[str, Any], projection: dict[str, str] | None) -> dict[str, Any]:
    if projection is None:
        return dict(final_context)
    out: dict[str, Any] = {}
    for key, path in projection.items():
        value: Any = final_context
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        out[key] = value
    return out


def _completed_sensor(spec: WorkflowSpec, sensor: WorkflowCompletedSensorSpec):
    event_types = [STATUS_EVENTS[s] for s in sensor.statuses]

    def evaluate(context: SensorEvaluationContext):
        with get_db() as session:
            if context.cursor is None:  # start from now: history does not trigger
                latest = session.scalar(select(ExecutionEvent.id).order_by(ExecutionEvent.id.desc()).limit(1))
                context.update_cursor(str(latest or 0))
                return SkipReason(f"started watching {sensor.workflow_id}: earlier executions do not trigger")
            rows = session.execute(
                select(
                    ExecutionEvent.id,
                    ExecutionEvent.event_type,
                    WorkflowExecution.id,
                    WorkflowExecution.final_context,
                    WorkflowExecution.global_context,
                )
                .join(WorkflowExecution, WorkflowExecution.id == ExecutionEvent.execution_id)
                .where(
                    WorkflowExecution.workflow_id == sensor.workflow_id,
                    ExecutionEvent.event_type.in_(event_types),
                    ExecutionEvent.id > int(context.cursor),
                )
                .order_by(ExecutionEvent.id)
            ).all()
        requests: list[RunRequest] = []
        for event_id, event_type, upstream_id, final_context, global_context in rows:
            source = final_context or {"global_context": global_context or {}, "outputs": {}}
            context_ = {**sensor.initial_context, **_project(source, sensor.context)}
            context_["upstream"] = {"workflow_id": sensor.workflow_id, "execution_id": upstream_id,
                                    "status": event_type.value.removeprefix("workflow_")}  # fmt: skip
            _append(context, requests, spec, context_, f"{upstream_id}:{event_type.value}")
            context.update_cursor(str(event_id))
        return requests or SkipReason(f"no execution of {sensor.workflow_id} reached {', '.join(sensor.statuses)}")

    return evaluate


def _queue_sensor(spec: WorkflowSpec, sensor: RequestQueueSensorSpec):
    def check(row_context: dict[str, Any]) -> object:
        return apply_inputs(spec.inputs, {**sensor.initial_context, **row_context}, workflow_id=spec.id)

    def evaluate(context: SensorEvaluationContext):
        with get_db(immediate=True) as session:
            accepted, refused = take_requests(session, spec.id, sensor.batch_size, check=check)
        requests = [
            _request(
                spec,
                {**sensor.initial_context, **r.initial_context},
                "sensor",
                run_key=r.request_id,
                execution_id=r.execution_id,
            )
            for r in accepted
        ]
        if refused:
            context.log.warning(f"refused execution requests {refused} (see execution_requests.error)")
        return requests or SkipReason(f"no pending execution request for {spec.id}")

    return evaluate


_EVALUATORS: dict[str, Callable[[WorkflowSpec, Any], Callable[[SensorEvaluationContext], Any]]] = {
    "file": _file_sensor,
    "workflow_completed": _completed_sensor,
    "request_queue": _queue_sensor,
}


def build_sensor(spec: WorkflowSpec, index: int) -> SensorDefinition:
    sensor = spec.sensors[index]
    return SensorDefinition(
        name=sensor_name(spec, index),
        evaluation_fn=_EVALUATORS[sensor.type](spec, sensor),
        job_name=job_name(spec.id),
        minimum_interval_seconds=sensor.minimum_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING if sensor.enabled else DefaultSensorStatus.STOPPED,
        description=f"{spec.id}: {sensor.type} sensor",
    )


def triggers_for(spec: WorkflowSpec) -> tuple[list[ScheduleDefinition], list[SensorDefinition]]:
    schedules = [build_schedule(spec, i) for i in range(len(spec.schedules))]
    sensors = [build_sensor(spec, i) for i in range(len(spec.sensors))]
    return schedules, sensors


def all_triggers(specs: Iterator[WorkflowSpec]) -> tuple[list[ScheduleDefinition], list[SensorDefinition]]:
    schedules: list[ScheduleDefinition] = []
    sensors: list[SensorDefinition] = []
    for spec in specs:
        s, t = triggers_for(spec)
        schedules += s
        sensors += t
    return schedules, sensors


def specs_with_triggers(session: Any) -> list[WorkflowSpec]:
    """The valid stored definitions that declare schedules or sensors."""
    from maestro_dagster.db.models import WorkflowDefinition

    rows = session.execute(
        select(WorkflowDefinition).where(WorkflowDefinition.is_valid.is_(True)).order_by(WorkflowDefinition.id)
    ).scalars()
    specs = []
    for row in rows:
        if not (row.definition.get("schedules") or row.definition.get("sensors")):
            continue
        try:
            specs.append(load_spec(row))
        except MaestroError as exc:  # one bad row never breaks the location's schedules and sensors
            log.error("triggers of workflow %s skipped: %s", row.id, exc.message)
    return specs


REQUEST_ERRORS_SENSOR = "maestro_request_errors"


def _refuse_orphan_requests(context: SensorEvaluationContext):
    from maestro_dagster.triggers.requests import refuse_orphans

    with get_db(immediate=True) as session:
        queues = {s.id for s in specs_with_triggers(session) if any(x.type == "request_queue" for x in s.sensors)}
        refused = refuse_orphans(session, queues)
    return SkipReason(f"refused {len(refused)} request(s) no workflow can run" if refused else "nothing to refuse")


maestro_request_errors = SensorDefinition(
    name=REQUEST_ERRORS_SENSOR,
    evaluation_fn=_refuse_orphan_requests,
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description="Marks execution_requests rows for unknown or invalid workflows (or workflows without a "
    "request_queue sensor) as error, with the reason.",
)
