"""Turning one stored Dagster event (an ``event_logs`` row) into the ``DagsterEventIn`` the mirror works on.

``to_event_in`` reads a deserialized ``EventLogRecord``. ``decode_event`` reads the row's serialized text, and
for the common event types (run start and end, step start, output and success) takes the few fields the mirror
needs straight from the parsed JSON instead of rebuilding Dagster's objects (``deserialize_value``), which cost
most of a catch-up pass. Anything it does not recognise exactly (another storage layout, an older or newer
serialization, failure and retry events with their error objects, metadata other than plain text, numbers,
JSON and null) goes through Dagster's deserialization and ``to_event_in``, so both paths give the same event.
Engine events are read only for a missed SLA's record (metadata ``maestro/sla_missed``); any other is None.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from dagster import EventLogEntry
from dagster._core.storage.event_log.base import EventLogRecord
from dagster_shared.serdes import deserialize_value

from maestro_dagster.errors import user_error
from maestro_dagster.mirror.model import DagsterEventIn
from maestro_dagster.mirror.reducer import SLA_EVENT
from maestro_dagster.spec.sla import META_SLA_MISSED
from maestro_dagster.tags import META_SKIPPED

_ATTEMPT_RE = re.compile(r"attempt # (\d+)")
# Dagster's wrappers around the user's exception (the mirror records the user's).
# Serialized metadata value classes whose ``.value`` is one stored field: storage name -> field.
_PLAIN_METADATA = {
    "TextMetadataEntryData": "text",
    "JsonMetadataEntryData": "data",
    "FloatMetadataEntryData": "value",
    "IntMetadataEntryData": "value",
    "BoolMetadataEntryData": "value",
}
_SERDES_KEYS = ("__class__", "__enum__", "__set__", "__frozenset__", "__mapping_items__")
_FAST_TYPES = ("PIPELINE_START", "PIPELINE_SUCCESS", "PIPELINE_CANCELED", "STEP_START", "STEP_OUTPUT", "STEP_SUCCESS")


class _Unrecognised(Exception):
    """The serialized event is not in the shape the fast path reads: deserialize it fully."""


def _metadata(values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (values or {}).items():
        out[key] = getattr(value, "value", value)
    return out


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
        kwargs["error_message"], kwargs["error_type"] = user_error(getattr(data, "error", None))
        kwargs["seconds_to_wait"] = getattr(data, "seconds_to_wait", None)
    elif etype == "STEP_SUCCESS":
        kwargs["duration_ms"] = getattr(data, "duration_ms", None)
    elif etype == "STEP_OUTPUT":
        kwargs["metadata"] = _metadata(getattr(data, "metadata", None))
    elif etype == "PIPELINE_FAILURE":
        kwargs["error_message"], kwargs["error_type"] = user_error(getattr(data, "error", None))
    elif etype == SLA_EVENT:  # only a missed SLA's or a skipped run's engine event is mirrored (its marker)
        meta = _metadata(getattr(data, "metadata", None))
        marker = next((key for key in (META_SLA_MISSED, META_SKIPPED) if key in meta), None)
        if marker is None:
            return None
        kwargs["metadata"] = {marker: meta[marker]}
    return DagsterEventIn(
        run_id=entry.run_id,
        storage_id=record.storage_id,
        event_type=etype,
        timestamp=datetime.fromtimestamp(entry.timestamp, UTC),
        step_key=event.step_key,
        message=(kwargs.get("error_message") if etype == "PIPELINE_FAILURE" else None) or event.message or "",
        **kwargs,
    )


def decode_event(storage_id: int, serialized: str) -> DagsterEventIn | None:
    """The event stored as ``serialized`` (an ``event_logs.event`` value) with storage id ``storage_id``."""
    try:
        return _fast(storage_id, json.loads(serialized))
    except (_Unrecognised, KeyError, TypeError, AttributeError, ValueError):
        entry = deserialize_value(serialized, EventLogEntry)
        return to_event_in(EventLogRecord(storage_id=storage_id, event_log_entry=entry))


def _fast(storage_id: int, entry: dict[str, Any]) -> DagsterEventIn | None:
    if entry["__class__"] != "EventLogEntry":
        raise _Unrecognised
    event = entry["dagster_event"]
    if event is None:
        return None
    etype = event["event_type_value"]
    if event["__class__"] != "DagsterEvent" or etype not in _FAST_TYPES:
        raise _Unrecognised
    step_key, message = event["step_key"], event["message"]
    if (step_key is None and event.get("step_handle") is not None) or not isinstance(message, str | None):
        raise _Unrecognised  # a legacy event whose step key comes from its handle
    data = event.get("event_specific_data")
    kwargs: dict[str, Any] = {}
    if etype == "STEP_START":
        kwargs["attempt"] = 1
    elif etype == "STEP_SUCCESS":
        if data is None or data["__class__"] != "StepSuccessData":
            raise _Unrecognised
        if not isinstance(data["duration_ms"], float):
            raise _Unrecognised
        kwargs["duration_ms"] = data["duration_ms"]
    elif etype == "STEP_OUTPUT":
        if data is None or data["__class__"] != "StepOutputData" or "metadata" in data:
            raise _Unrecognised
        kwargs["metadata"] = {e["label"]: _metadata_value(e) for e in data.get("metadata_entries") or ()}
    elif data is not None:
        raise _Unrecognised
    timestamp = entry["timestamp"]
    if not isinstance(timestamp, float | int) or not isinstance(entry["run_id"], str):
        raise _Unrecognised
    return DagsterEventIn(
        run_id=entry["run_id"],
        storage_id=storage_id,
        event_type=etype,
        timestamp=datetime.fromtimestamp(timestamp, UTC),
        step_key=step_key,
        message=message or "",
        **kwargs,
    )


def _metadata_value(entry: dict[str, Any]) -> Any:
    data = entry["entry_data"]
    if entry["__class__"] != "EventMetadataEntry" or not isinstance(entry["label"], str):
        raise _Unrecognised
    if data["__class__"] == "NullMetadataEntryData" and len(data) == 1:
        return None
    field = _PLAIN_METADATA.get(data["__class__"])
    if field is None or len(data) != 2:
        raise _Unrecognised
    value = data[field]
    if field == "data":
        _check_plain(value)
    elif field == "text" and not isinstance(value, str):
        raise _Unrecognised
    return value


def _check_plain(value: Any) -> None:
    """JSON metadata that Dagster would read back unchanged: no dict carries a serdes marker key."""
    if isinstance(value, dict):
        if any(k in value for k in _SERDES_KEYS):
            raise _Unrecognised
        for item in value.values():
            if isinstance(item, dict | list):
                _check_plain(item)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                _check_plain(item)
