"""Time windows of a partitioned schedule (``schedules: [{partitioned: true, start_date: ...}]``).

A workflow with a partitioned schedule is a partitioned Dagster job: its partitions are the time windows between
two ticks of the schedule's cron, in its timezone, from ``start_date`` on (Dagster's
``TimeWindowPartitionsDefinition``). This module owns the rules that both the compiler and the mirror read: which
schedule is the partitioned one, the partition key format (``%Y-%m-%d`` when the cron fires at most once a day at a
fixed minute and hour, else ``%Y-%m-%d-%H:%M``), the parsing of ``start_date`` and the window of a key (start and
end as ISO 8601 in the schedule's timezone) and the run config of a launch, with a window or without one. Dagster is
imported in the functions' bodies, so the spec models stay
importable without it.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagster import TimeWindowPartitionsDefinition

    from maestro_dagster.spec.models import ScheduleSpec, WorkflowSpec

DAY_FORMAT = "%Y-%m-%d"
MINUTE_FORMAT = "%Y-%m-%d-%H:%M"
CATCHUP_PER_TICK = 25
"""At most this many missed windows are requested per schedule tick (the next ticks request the rest)."""
_PLAIN_NUMBER = re.compile(r"^\d+$")


@dataclass(frozen=True)
class Window:
    """One partition: its key and its time window (ISO 8601 with the schedule's UTC offset)."""

    key: str
    start: str
    end: str

    def as_context(self) -> dict[str, str]:
        return {"partition_key": self.key, "partition_start": self.start, "partition_end": self.end}


def parse_start_date(value: Any, timezone: str) -> datetime:
    """``start_date`` (an ISO date ``2026-11-01`` or datetime ``2026-11-01T06:00``) as a datetime in ``timezone``
    (an offset written in the value wins); ValueError naming the expected forms otherwise."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"start_date {value!r} is not an ISO 8601 date or datetime: write e.g. '2026-11-01' or "
                "'2026-11-01T06:00'"
            ) from None
    else:
        raise ValueError(f"start_date must be an ISO 8601 date or datetime string, e.g. '2026-11-01' (got {value!r})")
    tz = zoneinfo.ZoneInfo(timezone)
    return parsed.astimezone(tz) if parsed.tzinfo else parsed.replace(tzinfo=tz)


def key_format(cron: str) -> str:
    """The partition key format of a cron: a day when it fires at one fixed minute and hour, else to the minute."""
    fields = cron.split()
    if cron.startswith("@"):
        return MINUTE_FORMAT if cron in ("@hourly",) else DAY_FORMAT
    if len(fields) == 5 and _PLAIN_NUMBER.match(fields[0]) and _PLAIN_NUMBER.match(fields[1]):
        return DAY_FORMAT
    return MINUTE_FORMAT


def partitioned_schedule(spec: WorkflowSpec) -> ScheduleSpec | None:
    """The workflow's partitioned schedule (validation allows at most one), or None."""
    return next((s for s in spec.schedules if s.partitioned), None)


def partitions_for(schedule: ScheduleSpec) -> TimeWindowPartitionsDefinition:
    """Dagster's partitions of a partitioned schedule: its cron's windows, in its timezone, from start_date."""
    from dagster import TimeWindowPartitionsDefinition

    start = parse_start_date(schedule.start_date, schedule.timezone)
    return TimeWindowPartitionsDefinition(
        cron_schedule=schedule.cron,
        start=start.replace(tzinfo=None),
        timezone=schedule.timezone,
        fmt=key_format(schedule.cron),
    )


def workflow_partitions(spec: WorkflowSpec) -> TimeWindowPartitionsDefinition | None:
    schedule = partitioned_schedule(spec)
    return partitions_for(schedule) if schedule is not None else None


def window_of(partitions: TimeWindowPartitionsDefinition, key: str) -> Window:
    """The window of partition ``key`` (ValueError if the key is not one of the partitions' format)."""
    window = partitions.time_window_for_partition_key(key)
    return Window(key, window.start.isoformat(), window.end.isoformat())


def keys_between(partitions: TimeWindowPartitionsDefinition, first: datetime, last: datetime) -> list[str]:
    """The keys of the windows, ended by now, that start in [first, last) (in order)."""
    keys = partitions.get_partition_keys()
    return [k for k in keys if first <= partitions.time_window_for_partition_key(k).start < last]


def problems_of(schedule: Any, timezone: str) -> str | None:
    """Why a raw partitioned schedule cannot become Dagster partitions (None when it can)."""
    try:
        start = parse_start_date(schedule.get("start_date"), timezone)
    except ValueError as exc:
        return str(exc)
    try:
        from dagster import TimeWindowPartitionsDefinition

        TimeWindowPartitionsDefinition(
            cron_schedule=str(schedule.get("cron")),
            start=start.replace(tzinfo=None),
            timezone=timezone,
            fmt=key_format(str(schedule.get("cron"))),
        )
    except Exception as exc:  # Dagster's own refusal of the cron, e.g. one it cannot make windows of
        return f"Dagster cannot make time windows of cron {schedule.get('cron')!r}: {exc}"
    return None


PARTITION_TAG = "dagster/partition"  # Dagster's tag of a partition's run (schedule, backfill, launchpad)
PARTITION_COLUMNS = ("partition_key", "partition_start", "partition_end")


def partition_columns(spec: WorkflowSpec, tags: Mapping[str, str]) -> dict[str, str | None]:
    """The execution's partition columns for a run with ``tags``: its ``dagster/partition`` key and that key's
    window in the workflow's partitions; all None for a run without a partition (or a key they do not have)."""
    key = tags.get(PARTITION_TAG)
    schedule = partitioned_schedule(spec)
    if not key or schedule is None:
        return dict.fromkeys(PARTITION_COLUMNS)
    try:
        window = window_of(partitions_for(schedule), key)
    except Exception:  # a key of an older set of partitions (the definition changed): the key alone is recorded
        return {"partition_key": key, "partition_start": None, "partition_end": None}
    return {"partition_key": key, "partition_start": window.start, "partition_end": window.end}


def _resource_config(context: Mapping[str, Any]) -> dict[str, Any]:
    from maestro_dagster.tags import RESOURCE_KEY

    return {"resources": {RESOURCE_KEY: {"config": {"initial_context": dict(context)}}}}


def partition_run_config(spec: WorkflowSpec, key: str) -> dict[str, Any]:
    """The run config of the window ``key`` of ``spec``'s partitioned schedule: the schedule's ``initial_context``
    (checked and completed by the workflow's ``inputs``) plus the window's ``partition_*`` entries. A partitioned
    job takes no ``ConfigMapping`` (Dagster refuses both at once), so this is the resource's own config."""
    from maestro_dagster.spec.inputs import apply_inputs

    schedule = partitioned_schedule(spec)
    if schedule is None:
        raise ValueError(f"workflow {spec.id!r} has no partitioned schedule")
    base = apply_inputs(spec.inputs, dict(schedule.initial_context), workflow_id=spec.id)
    return _resource_config({**base, **window_of(partitions_for(schedule), key).as_context()})


def launch_run_config(spec: WorkflowSpec, context: Mapping[str, Any]) -> dict[str, Any]:
    """The run config of a launch without a window (``maestro run``, the API) with ``context`` as its (checked)
    initial context: ``{initial_context}`` for a job with the mapping, the resource's config for a partitioned
    job."""
    if partitioned_schedule(spec) is None:
        return {"initial_context": dict(context)}
    return _resource_config(context)
