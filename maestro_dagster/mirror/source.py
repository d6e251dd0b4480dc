"""Reading Dagster: the events of a run after a cursor, reduced to ``DagsterEventIn``; which runs to mirror."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus, RunRecord, RunsFilter
from dagster._core.storage.event_log.base import EventLogCursor

from maestro_dagster.compiler import TAG_WORKFLOW_ID
from maestro_dagster.mirror.model import DagsterEventIn
from maestro_dagster.mirror.reducer import MIRRORED_TYPES

_TYPES = {DagsterEventType(t) for t in MIRRORED_TYPES}
_ATTEMPT_RE = re.compile(r"attempt # (\d+)")
PAGE = 5000
# Dagster's wrappers around the user's exception (the mirror records the user's).
_WRAPPERS = ("DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError", "RetryRequestedFromPolicy")
FINISHED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)


def is_maestro_run(run: DagsterRun) -> bool:
    return bool(run.tags.get(TAG_WORKFLOW_ID))


def _metadata(values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (values or {}).items():
        out[key] = getattr(value, "value", value)
    return out


def _error(error: Any) -> tuple[str | None, str | None]:
    """The user's error (the cause Dagster wraps), as (``str(exc)``, class name).

    Dagster's message is ``traceback.format_exception_only`` (``"RuntimeError: b broke"``); the class name
    prefix is dropped, as the original recorded ``str(e)`` (a message-less exception keeps its class name).
    """
    if error is None:
        return None, None
    while getattr(error, "cause", None) is not None and error.cls_name in _WRAPPERS:
        error = error.cause
    text = (error.message or "").strip()
    head, sep, rest = text.partition(": ")
    if sep and error.cls_name and (head == error.cls_name or head.endswith("." + error.cls_name)):
        text = rest.strip() or text
    return text or None, error.cls_name


def to_event_in(record: Any) -> DagsterEventIn | None:
    entry = record.event_log_entry
    event = entry.dagster_event
    if event is None:
        return None
    etype = event.event_type_value
    data = event.event_specific_data
    kwargs: dict[str, Any] = {}
    if etype == "STEP_START":
        kwargs["attempt"] = 1
    elif etype == "STEP_RESTARTED":
        match = _ATTEMPT_RE.search(event.message or "")
        kwargs["attempt"] = int(match.group(1)) if match else None
    elif etype in ("STEP_UP_FOR_RETRY", "STEP_FAILURE"):
        kwargs["error_message"], kwargs["error_type"] = _error(getattr(data, "error", None))
        kwargs["seconds_to_wait"] = getattr(data, "seconds_to_wait", None)
    elif etype == "STEP_SUCCESS":
        kwargs["duration_ms"] = getattr(data, "duration_ms", None)
    elif etype == "STEP_OUTPUT":
        kwargs["metadata"] = _metadata(getattr(data, "metadata", None))
    elif etype == "PIPELINE_FAILURE":
        kwargs["error_message"], kwargs["error_type"] = _error(getattr(data, "error", None))
    return DagsterEventIn(
        run_id=entry.run_id,
        storage_id=record.storage_id,
        event_type=etype,
        timestamp=datetime.fromtimestamp(entry.timestamp, UTC),
        step_key=event.step_key,
        message=(kwargs.get("error_message") if etype == "PIPELINE_FAILURE" else None) or event.message or "",
        **kwargs,
    )


def read_events(instance: DagsterInstance, run_id: str, after_storage_id: int = 0) -> list[DagsterEventIn]:
    """Every mirrored-type event of ``run_id`` with a storage id above ``after_storage_id``, in order."""
    cursor = EventLogCursor.from_storage_id(after_storage_id).to_string() if after_storage_id else None
    out: list[DagsterEventIn] = []
    while True:
        conn = instance.get_records_for_run(run_id, cursor=cursor, of_type=_TYPES, limit=PAGE)
        for record in conn.records:
            event = to_event_in(record)
            if event is not None:
                out.append(event)
        if not conn.has_more:
            return out
        cursor = conn.cursor


def iter_maestro_run_records(
    instance: DagsterInstance, *, updated_after: datetime | None = None
) -> Iterator[RunRecord]:
    """The records (run and create time) of the runs ``iter_maestro_runs`` lists."""
    filters = RunsFilter(updated_after=updated_after) if updated_after else None
    for record in instance.get_run_records(filters=filters, ascending=True):
        if is_maestro_run(record.dagster_run):
            yield record


def iter_maestro_runs(instance: DagsterInstance, *, updated_after: datetime | None = None) -> Iterator[DagsterRun]:
    """Runs of Maestro jobs (tagged with a workflow id), oldest first; only those updated after a time if given."""
    for record in iter_maestro_run_records(instance, updated_after=updated_after):
        yield record.dagster_run
