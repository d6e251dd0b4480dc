"""The daily rollups as Dagster assets: ``daily_workflow_stats``, ``daily_node_stats`` and ``daily_duration_buckets``
(group ``maestro_reporting``), one partition per UTC day, the check that a day's rollups equal its raw rows, the
asset jobs that build and check a range of days, and the schedule ``maestro_reporting_rollups``.

What a day's rows are is ``maestro_dagster.reporting.rollups``' business; this module only runs it under Dagster:
one multi-asset (the three tables are written together by ``rebuild_day``, in one transaction, so they are never
materialized apart) and one multi-asset check (one comparison, ``check_day``, reported per table). The check runs
after every materialization and also alone (``maestro_reporting_rollups_check_job``, or "Execute" on the check in
the Dagster UI) so a rollup changed since its build is found without rebuilding it.

Partitions start on ``PARTITIONS_START`` (a fixed date before any Maestro database existed, so every day that has
executions has a partition, and the partition set is the same in every process whatever its settings) and end
with today's (``end_offset=1``: today can be rolled up so far, and is rebuilt once it is over).
"""

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    AssetSpec,
    DagsterInstance,
    DailyPartitionsDefinition,
    DefaultScheduleStatus,
    ExecuteInProcessResult,
    MaterializeResult,
    MetadataValue,
    PreviewWarning,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    in_process_executor,
    multi_asset,
    multi_asset_check,
    schedule,
)

from maestro_dagster.db.session import get_db
from maestro_dagster.errors import ValidationError
from maestro_dagster.reporting import rollups
from maestro_dagster.settings import get_settings

GROUP = "maestro_reporting"
PARTITIONS_START = date(2020, 1, 1)
PARTITIONS = DailyPartitionsDefinition(start_date=PARTITIONS_START.isoformat(), timezone="UTC", end_offset=1)
#: The rollup tables, each an asset of the same name.
TABLES = ("daily_workflow_stats", "daily_node_stats", "daily_duration_buckets")
ASSET_KEYS = tuple(AssetKey(table) for table in TABLES)
CHECK_NAME = "matches_raw_rows"
JOB_NAME = "maestro_reporting_rollups_job"
CHECK_JOB_NAME = "maestro_reporting_rollups_check_job"
SCHEDULE_NAME = "maestro_reporting_rollups"
SCHEDULE_CRON = "30 0 * * *"  # 00:30 UTC: yesterday is over
MAX_LISTED_DIFFERENCES = 50  # in a check's metadata; the count is always complete


def partition_key(day: date) -> str:
    return day.isoformat()


def day_of(key: str) -> date:
    return date.fromisoformat(key)


def days_between(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last`` (both included), after checking they name partitions."""
    today = datetime.now(UTC).date()
    if first > last:
        raise ValidationError(f"--from {first} is after --to {last}: give the earlier day first")
    if first < PARTITIONS_START or last > today:
        raise ValidationError(
            f"the days {first}..{last} are not all rollup partitions: partitions run from {PARTITIONS_START} "
            f"to today ({today}, UTC); choose days in that range"
        )
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@dataclass(frozen=True)
class DayCheck:
    """The outcome of comparing one day's rollups with its raw rows, per table (``[]``: equal)."""

    day: date
    by_table: dict[str, list[str]]

    @property
    def passed(self) -> bool:
        return not any(self.by_table.values())

    @property
    def differences(self) -> list[str]:
        return sorted({d for found in self.by_table.values() for d in found})


def check_rollup_day(day: date) -> DayCheck:
    """``rollups.check_day`` in its own transaction (the outcome is recorded in ``rollup_days``), split per table: a
    difference names its table; one that names none (the day was never materialized) belongs to every table."""
    with get_db(get_settings(), immediate=True) as session:
        found = rollups.check_day(session, day)
    by_table: dict[str, list[str]] = {table: [] for table in TABLES}
    for difference in found:
        table = difference.split(" ", 1)[0]
        for name in [table] if table in by_table else TABLES:
            by_table[name].append(difference)
    return DayCheck(day, by_table)


@multi_asset(
    name="maestro_reporting_rollups",
    specs=[
        AssetSpec(
            key,
            group_name=GROUP,
            description=f"Table {key.path[-1]}: one UTC day's rollup of the mirrored executions "
            "(docs/reporting.md, docs/schema.md)",
            kinds={"sql"},
        )
        for key in ASSET_KEYS
    ],
    partitions_def=PARTITIONS,
    can_subset=False,
)
def maestro_reporting_rollups(context: AssetExecutionContext) -> Iterator[MaterializeResult]:
    """Rebuild the partition's day (idempotent; a day retention has begun to prune is kept as it is)."""
    day = day_of(context.partition_key)
    with get_db(get_settings(), immediate=True) as session:
        result = rollups.rebuild_day(session, day)
    metadata = {
        "day": MetadataValue.text(day.isoformat()),
        "executions": MetadataValue.int(result.executions),
        "workflows": MetadataValue.int(result.workflows),
        "nodes": MetadataValue.int(result.nodes),
        "kept": MetadataValue.bool(result.kept),
    }
    if result.kept:
        context.log.info(f"{day}: retention has pruned this day's raw rows; its rollups are kept as they are")
    for key in ASSET_KEYS:
        yield MaterializeResult(asset_key=key, metadata=metadata)


def _check_specs() -> list[AssetCheckSpec]:
    with warnings.catch_warnings():  # a partitioned check is a preview feature of Dagster 1.13 (tests cover it)
        warnings.simplefilter("ignore", PreviewWarning)
        return [
            AssetCheckSpec(
                CHECK_NAME,
                asset=key,
                partitions_def=PARTITIONS,
                description="The day's rows equal what the raw rows give now (always true once the day is pruned)",
            )
            for key in ASSET_KEYS
        ]


@multi_asset_check(name="maestro_reporting_rollups_check", specs=_check_specs())
def maestro_reporting_rollups_check(context: AssetCheckExecutionContext) -> Iterator[AssetCheckResult]:
    """Compare the partition's day with its raw rows, record it in ``rollup_days``, one result per table."""
    outcome = check_rollup_day(day_of(context.partition_key))
    for key, table in zip(ASSET_KEYS, TABLES, strict=True):
        found = outcome.by_table[table]
        yield AssetCheckResult(
            asset_key=key,
            check_name=CHECK_NAME,
            passed=not found,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "day": MetadataValue.text(outcome.day.isoformat()),
                "difference_count": MetadataValue.int(len(found)),
                "differences": MetadataValue.json(found[:MAX_LISTED_DIFFERENCES]),
            },
        )


rollups_job = define_asset_job(
    JOB_NAME,
    selection=AssetSelection.assets(*ASSET_KEYS),  # with their checks
    partitions_def=PARTITIONS,
    executor_def=in_process_executor,  # two short steps: no process per step
    description="Rebuild and check the daily rollups of the selected day(s) (backfill from the UI or "
    "`maestro rollups build`)",
)
check_job = define_asset_job(
    CHECK_JOB_NAME,
    selection=AssetSelection.checks(maestro_reporting_rollups_check),
    executor_def=in_process_executor,
    description="Only compare a day's rollups with its raw rows (run with the tag dagster/partition=YYYY-MM-DD, or "
    "`maestro rollups check`)",
)


@schedule(
    name=SCHEDULE_NAME,
    cron_schedule=SCHEDULE_CRON,
    execution_timezone="UTC",
    job=rollups_job,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every day at 00:30 UTC: rebuild yesterday's rollups and the day before's (an execution created "
    "before midnight may have finished since)",
)
def maestro_reporting_rollups_schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    tick = context.scheduled_execution_time.date()
    for back in (2, 1):
        key = partition_key(tick - timedelta(days=back))
        yield RunRequest(run_key=f"{key}@{tick}", partition_key=key)


ASSETS = [maestro_reporting_rollups]
ASSET_CHECKS = [maestro_reporting_rollups_check]
JOBS = [rollups_job, check_job]
SCHEDULES = [maestro_reporting_rollups_schedule]


@dataclass(frozen=True)
class DayRun:
    """One day's run of the rollup job (or of the check job alone): what the materialization and the check said."""

    day: date
    run_id: str
    success: bool
    metadata: dict[str, Any]  # of the materialization (executions, workflows, nodes, kept); {} for a check run
    checked: bool  # the check ran (it runs after the materialization, and alone in the check job)
    differences: dict[str, list[str]]  # per table, as far as the check's metadata lists them (failed tables only)
    error: str | None = None  # why the run failed

    @property
    def check_passed(self) -> bool:
        return self.checked and not self.differences


def run_day(instance: DagsterInstance, day: date, *, check_only: bool = False) -> DayRun:
    """Run the rollup job (``check_only``: the check job) for ``day``'s partition in this process, recorded in
    ``instance`` as any run is (the Dagster UI shows its materializations and check results)."""
    from maestro_dagster.assets import reporting_definitions  # the package gathers this module's definitions

    job = reporting_definitions().get_repository_def().get_job(CHECK_JOB_NAME if check_only else JOB_NAME)
    key = partition_key(day)
    if check_only:  # a job of checks only has no partitions of its own: the partition is its tag
        result = job.execute_in_process(instance=instance, tags={"dagster/partition": key}, raise_on_error=False)
    else:
        result = job.execute_in_process(instance=instance, partition_key=key, raise_on_error=False)
    return _day_run(day, result)


def _day_run(day: date, result: ExecuteInProcessResult) -> DayRun:
    metadata: dict[str, Any] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        metadata = {name: value.value for name, value in materialization.metadata.items()}
    evaluations = result.get_asset_check_evaluations()
    differences = {
        evaluation.asset_key.path[-1]: list(evaluation.metadata["differences"].value or [])  # type: ignore[arg-type]
        for evaluation in evaluations
        if not evaluation.passed
    }
    failures = [event.step_failure_data.error for event in result.get_step_failure_events()]
    error = next((e.message.strip() for e in failures if e is not None), None)
    if not result.success and error is None:
        error = "the run failed; see it in the Dagster UI"
    return DayRun(day, result.run_id, result.success, metadata, bool(evaluations), differences, error)
