"""``maestro backfill``: one run per time window of a partitioned workflow, at most N in flight at once.

The windows are those of the workflow's partitions (``spec.partitions``) that start in [from, to] and have ended.
Each is launched through a ``Transport`` with the partition's own run config
(``spec.partitions.partition_run_config``) and Dagster's ``dagster/partition`` tag, so the run is the same as one
the Dagster UI's backfill or the schedule launches, and the mirror records one execution per window with its
partition columns. Through the API's transport
(the webserver: queued, started by the daemon) at most ``max_concurrent`` runs are unfinished at any time: the
next window is launched when one ends. ``LocalTransport`` runs each window to its end here, one at a time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dagster import DagsterInstance

from maestro_dagster.errors import ValidationError
from maestro_dagster.executions.transport import Transport
from maestro_dagster.names import job_name, new_execution_id
from maestro_dagster.spec import WorkflowSpec
from maestro_dagster.spec.partitions import (
    PARTITION_TAG,
    keys_between,
    parse_start_date,
    partition_run_config,
    partitioned_schedule,
    partitions_for,
)
from maestro_dagster.tags import launch_tags

TAG_BACKFILL = "maestro/backfill"  # the id of the `maestro backfill` that launched the run
TRIGGER_BACKFILL = "backfill"
_FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclass(frozen=True)
class Launched:
    partition_key: str
    execution_id: str
    run_id: str


def windows(spec: WorkflowSpec, first: str, last: str) -> list[str]:
    """The partition keys of ``spec`` whose window starts in [first, last] (dates include their whole day)."""
    schedule = partitioned_schedule(spec)
    if schedule is None:
        raise ValidationError(
            f"workflow {spec.id!r} has no partitioned schedule: add partitioned: true and start_date to one of its "
            "schedules to backfill it"
        )
    try:
        start, end = parse_start_date(first, schedule.timezone), parse_start_date(last, schedule.timezone)
    except ValueError as exc:
        raise ValidationError(f"--from/--to: {str(exc).replace('start_date', 'the value')}") from None
    if _is_date(last):
        end += timedelta(days=1)
    else:
        end += timedelta(microseconds=1)
    keys = keys_between(partitions_for(schedule), start, end)
    if not keys:
        raise ValidationError(f"no ended window of {spec.id!r} starts between {first} and {last}: widen --from/--to")
    return keys


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


def run_backfill(
    transport: Transport, spec: WorkflowSpec, keys: list[str], *, max_concurrent: int = 1, timeout: float = 86400
) -> list[Launched]:
    """Launch one run per key, at most ``max_concurrent`` unfinished at a time; returns them in key order once the
    last one is launched (the caller waits for their ends if it wants to)."""
    if max_concurrent < 1:
        raise ValidationError("--max-concurrent must be at least 1")
    backfill_id = new_execution_id(spec.id).replace("exec_", "bf_", 1)
    instance = transport.instance()
    launched: list[Launched] = []
    in_flight: list[str] = []
    deadline = time.monotonic() + timeout
    for key in keys:
        while len(in_flight) >= max_concurrent:
            in_flight = [r for r in in_flight if _status(instance, r) not in _FINISHED]
            if len(in_flight) >= max_concurrent:
                if time.monotonic() > deadline:
                    raise ValidationError(f"backfill {backfill_id}: runs did not finish within {timeout:.0f} s")
                time.sleep(1)
        execution_id = new_execution_id(spec.id, datetime.now().astimezone())
        tags = {**launch_tags(execution_id, TRIGGER_BACKFILL, spec.id), PARTITION_TAG: key, TAG_BACKFILL: backfill_id}
        run_id = transport.launch(job_name(spec.id), partition_run_config(spec, key), tags)
        launched.append(Launched(key, execution_id, run_id))
        in_flight.append(run_id)
    return launched


def _status(instance: DagsterInstance, run_id: str) -> str | None:
    run = instance.get_run_by_id(run_id)
    return run.status.value if run is not None else None
