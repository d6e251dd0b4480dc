"""The tick of a partitioned schedule (``partitioned: true``), and the windows ``maestro backfill`` runs.

Each tick requests the latest window that has ended by the tick's time (Dagster's
``build_schedule_from_partitioned_job`` does the same): a ``RunRequest`` with that ``partition_key`` and no run
config, so Dagster takes the partition's config from the job (``compiler.partitions``) and tags the run
``dagster/partition``. With ``catchup: true`` the tick also requests every earlier window, from ``start_date``
on, that has no run of the job yet (Airflow's catch-up), oldest first and at most ``CATCHUP_PER_TICK`` per tick
(the next ticks request the rest): turning the schedule on runs the windows missed while it was off. A window
counts as run once any run of it exists, whatever its outcome (re-run a failed one with ``maestro resume`` or
``maestro backfill``). The run key is the partition key, so a retried tick never requests a window twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from dagster import DagsterInstance, RunRequest, RunsFilter, ScheduleEvaluationContext, SkipReason

from maestro_dagster.names import job_name, new_execution_id
from maestro_dagster.spec import ScheduleSpec, WorkflowSpec
from maestro_dagster.spec.partitions import CATCHUP_PER_TICK, partitions_for
from maestro_dagster.tags import launch_tags


def partitions_with_runs(instance: DagsterInstance, workflow_id: str) -> set[str]:
    """The partition keys that have at least one run of the workflow's job (Dagster's run storage)."""
    return {data.partition for data in instance.get_run_partition_data(RunsFilter(job_name=job_name(workflow_id)))}


def due_windows(spec: WorkflowSpec, schedule: ScheduleSpec, instance: DagsterInstance, at: datetime) -> list[str]:
    """The partition keys a tick at ``at`` requests: the latest ended window, and with catchup the missed ones."""
    partitions = partitions_for(schedule)
    keys = list(partitions.get_partition_keys(current_time=at))
    if not keys:
        return []
    if not schedule.catchup:
        return [keys[-1]]
    done = partitions_with_runs(instance, spec.id)
    missed = [k for k in keys[:-1] if k not in done][:CATCHUP_PER_TICK]
    return [*missed, keys[-1]]


def partitioned_evaluator(
    spec: WorkflowSpec, schedule: ScheduleSpec
) -> Callable[[ScheduleEvaluationContext], Iterator[RunRequest | SkipReason]]:
    def evaluate(context: ScheduleEvaluationContext) -> Iterator[RunRequest | SkipReason]:
        at = context.scheduled_execution_time or datetime.now(UTC)
        keys = due_windows(spec, schedule, context.instance, at)
        if not keys:
            yield SkipReason(f"no window of {spec.id} has ended yet (the first starts at {schedule.start_date})")
        for key in keys:  # several requests: Dagster takes them from a generator, not a list
            yield RunRequest(
                run_key=key, partition_key=key, tags=launch_tags(new_execution_id(spec.id, at), "schedule")
            )

    return evaluate
