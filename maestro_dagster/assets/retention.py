"""Retention as a Dagster job, ``maestro_retention``, and its opt-in schedule ``maestro_retention_schedule``.

The job runs ``reporting.retention.apply_retention`` (what is removed and the guarantees are that module's) with the
run's instance as the deleter of Dagster runs, and logs one line per day and the total. Its horizon is the run
config's ``older_than_days``, else ``MAESTRO_RETENTION_DAYS``; with neither the run fails, deleting nothing.
The schedule exists only when ``MAESTRO_RETENTION_DAYS`` is set (unset: retention never runs by itself) and fires at
``MAESTRO_RETENTION_CRON`` (UTC, default 03:30, after the rollups' 00:30 build). Refused days are warnings in the
run's log, not a failure, as in ``maestro retention apply``; a day left incomplete fails the run.
"""

from datetime import timedelta

from dagster import (
    Config,
    DefaultScheduleStatus,
    Failure,
    JobDefinition,
    OpExecutionContext,
    RunConfig,
    ScheduleDefinition,
    in_process_executor,
    job,
    op,
)

from maestro_dagster.db.session import get_db
from maestro_dagster.errors import ConfigError
from maestro_dagster.reporting.retention import DayOutcome, apply_retention, day_line, total_line
from maestro_dagster.settings import get_settings, setting_name
from maestro_dagster.spec.models import is_valid_cron

JOB_NAME = "maestro_retention"
SCHEDULE_NAME = "maestro_retention_schedule"
OP_NAME = "maestro_retention_apply"


class RetentionConfig(Config):
    older_than_days: int | None = None  # default: MAESTRO_RETENTION_DAYS
    dry_run: bool = False


@op(name=OP_NAME, description="Remove the raw rows and Dagster runs of rolled-up, checked days before the horizon")
def retention_op(context: OpExecutionContext, config: RetentionConfig) -> None:
    settings = get_settings()
    days = config.older_than_days or settings.retention_days
    if days is None or days < 1:
        raise Failure(
            f"no retention horizon: set {setting_name('retention_days')} or the run config's older_than_days "
            "(a positive number of days); nothing was deleted"
        )

    def logged(outcome: DayOutcome) -> None:
        line = day_line(outcome, dry_run=config.dry_run)
        (context.log.warning if outcome.refused else context.log.info)(line)

    report = apply_retention(
        lambda: get_db(settings), context.instance, timedelta(days=days), dry_run=config.dry_run, on_day=logged
    )
    context.log.info(total_line(report))
    if report.incomplete:
        raise Failure(f"{len(report.incomplete)} day(s) left incomplete: run retention again once they finish")


@job(name=JOB_NAME, executor_def=in_process_executor, description="Retention of the raw tables (opt-in schedule)")
def retention_job() -> None:
    retention_op()


def retention_definitions() -> tuple[list[JobDefinition], list[ScheduleDefinition]]:
    """(jobs, schedules) of retention: the job always, its schedule only when ``MAESTRO_RETENTION_DAYS`` is set."""
    settings = get_settings()
    if settings.retention_days is None:
        return [retention_job], []
    if not is_valid_cron(settings.retention_cron):
        variable = setting_name("retention_cron")
        raise ConfigError(
            f"{variable}={settings.retention_cron!r} is not a cron expression: write five fields, e.g. '30 3 * * *'",
            details={"variable": variable},
        )
    schedule = ScheduleDefinition(
        name=SCHEDULE_NAME,
        cron_schedule=settings.retention_cron,
        execution_timezone="UTC",
        job=retention_job,
        run_config=RunConfig(ops={OP_NAME: RetentionConfig(older_than_days=settings.retention_days)}),
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Retention of raw rows older than {settings.retention_days} day(s) "
        f"({setting_name('retention_days')})",
    )
    return [retention_job], [schedule]
