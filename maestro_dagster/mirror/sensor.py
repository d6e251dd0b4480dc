"""The daemon's catch-up loop: a Dagster sensor in the code location that runs ``sync_runs``.

It mirrors every Maestro run the run itself did not finish mirroring (whatever launched it), and fails
runs whose worker process died. Its cursor is the time of the previous tick, so each tick looks only at
runs updated since (minus a margin); runs not yet complete are always revisited. It requests no runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dagster import DefaultSensorStatus, SensorEvaluationContext, SkipReason, sensor

from maestro_dagster.mirror.sync import sync_runs

SENSOR_NAME = "maestro_mirror_sensor"
MARGIN = timedelta(minutes=2)


@sensor(
    name=SENSOR_NAME,
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description="Mirrors Dagster runs of Maestro jobs into Maestro's tables and fails runs whose worker died.",
)
def maestro_mirror_sensor(context: SensorEvaluationContext) -> SkipReason:
    now = datetime.now(UTC)
    since = datetime.fromisoformat(context.cursor) - MARGIN if context.cursor else None
    report = sync_runs(context.instance, updated_after=since)
    if not report.errors:  # else the same runs are listed again next tick
        context.update_cursor(now.isoformat())
    touched = [r for r in report.runs if r.events_read]
    errors = "".join(f"; run {r.run_id} not mirrored: {r.error}" for r in report.errors[:3])
    return SkipReason(
        f"mirrored {report.events_read} event(s) of {len(touched)} run(s); "
        f"{len(report.failed_dead_runs)} dead run(s) failed{errors}"
    )
