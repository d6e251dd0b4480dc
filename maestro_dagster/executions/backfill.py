"""``maestro backfill``: one run per time window of a partitioned workflow, at most N in flight at once.

The windows are those of the workflow's partitions (``spec.partitions``) that start in [from, to] and have ended.
Each is launched through a ``Transport`` with the partition's own run config
(``spec.partitions.partition_run_config``) and Dagster's ``dagster/partition`` tag, so the run is the same as one
the Dagster UI's backfill or the schedule launches, and the mirror records one execution per window with its
partition columns. Through the API's transport
(the webserver: queued, started by the daemon) at most ``max_concurrent`` runs are unfinished at any time: the
next window is launched when one ends. ``LocalTransport`` runs each window to its end here, one at a time.

The API's backfill (``launch_dagster_backfill``) is Dagster's own partition backfill instead, as the Dagster UI
launches it: nothing waits in the API; its ``max_concurrent`` is a tag limit the run coordinator holds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from dagster import DagsterInstance

from maestro_dagster.errors import ValidationError
from maestro_dagster.executions.gateway import DagsterGateway
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
from maestro_dagster.tags import TAG_BACKFILL, TAG_BACKFILL_LIMIT, TAG_TRIGGER, launch_tags

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
        raise ValidationError(f"from/to: {str(exc).replace('start_date', 'the value')}") from None
    if _is_date(last):
        end += timedelta(days=1)
    else:
        end += timedelta(microseconds=1)
    keys = keys_between(partitions_for(schedule), start, end)
    if not keys:
        raise ValidationError(
            f"no ended window of {spec.id!r} starts between {first} and {last}: widen the range (--from/--to, or "
            "from/to in the API)"
        )
    return keys


def new_backfill_id(workflow_id: str) -> str:
    """``bf_<workflow>_<time>_<8 hex>``, the value of ``maestro/backfill`` on the runs of one backfill."""
    return new_execution_id(workflow_id).replace("exec_", "bf_", 1)


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
    backfill_id = new_backfill_id(spec.id)
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


@dataclass(frozen=True)
class DagsterBackfill:
    backfill_id: str  # maestro/backfill on its runs
    dagster_backfill_id: str
    partition_keys: list[str]


def launch_dagster_backfill(
    gateway: DagsterGateway, spec: WorkflowSpec, first: str, last: str, *, max_concurrent: int | None = None
) -> DagsterBackfill:
    """The API's backfill: Dagster's own partition backfill of the windows in [first, last] (what the Dagster UI
    launches), its runs queued at once and started by the daemon; ``max_concurrent`` is a tag concurrency limit
    on the backfill's runs (``launcher.concurrency``), so it holds without anyone waiting here."""
    if max_concurrent is not None and max_concurrent < 1:
        raise ValidationError("max_concurrent must be at least 1")
    keys = windows(spec, first, last)
    backfill_id = new_backfill_id(spec.id)
    tags = {TAG_TRIGGER: TRIGGER_BACKFILL, TAG_BACKFILL: backfill_id}
    if max_concurrent is not None:
        tags[TAG_BACKFILL_LIMIT] = str(max_concurrent)
    dagster_id = gateway.launch_backfill(job_name(spec.id), keys, tags)
    return DagsterBackfill(backfill_id, dagster_id, keys)
