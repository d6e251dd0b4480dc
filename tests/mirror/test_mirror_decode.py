"""decode_event (the mirror's reading of a stored Dagster event) gives what Dagster's own deserialization gives."""

from __future__ import annotations

import json

import pytest
from dagster import EventLogEntry, MetadataValue
from dagster._core.events import DagsterEvent
from dagster._core.execution.plan.objects import StepFailureData, StepRetryData, StepSuccessData
from dagster._core.execution.plan.outputs import StepOutputData, StepOutputHandle
from dagster._core.storage.event_log.base import EventLogRecord
from dagster._serdes import serialize_value
from dagster._utils.error import SerializableErrorInfo
from dagster_shared.serdes import deserialize_value

from maestro_dagster.mirror.decode import _fast, decode_event, to_event_in

RUN_ID = "0f3c2b1a-0000-4000-8000-000000000001"


def _entry(event_type: str, step_key: str | None = None, data=None, message: str = "msg") -> str:
    event = DagsterEvent(
        event_type_value=event_type,
        job_name="job",
        step_key=step_key,
        event_specific_data=data,
        message=message,
        pid=1,
    )
    entry = EventLogEntry(
        error_info=None, level=10, user_message=message, run_id=RUN_ID, timestamp=1_700_000_000.25,
        step_key=step_key, job_name="job", dagster_event=event,
    )  # fmt: skip
    return serialize_value(entry)


def _slow(storage_id: int, serialized: str):
    entry = deserialize_value(serialized, EventLogEntry)
    return to_event_in(EventLogRecord(storage_id=storage_id, event_log_entry=entry))


def _output(metadata: dict) -> StepOutputData:
    return StepOutputData(step_output_handle=StepOutputHandle("a", "result"), metadata=metadata)


ERROR = SerializableErrorInfo(
    "DagsterExecutionStepExecutionError: wrapped",
    [],
    "DagsterExecutionStepExecutionError",
    cause=SerializableErrorInfo("RuntimeError: b broke\n", [], "RuntimeError"),
)
FAST = [
    _entry("PIPELINE_START", message='Started execution of run for "job".'),
    _entry("PIPELINE_SUCCESS"),
    _entry("PIPELINE_CANCELED", message=""),
    _entry("STEP_START", "a"),
    _entry("STEP_SUCCESS", "a", StepSuccessData(duration_ms=114.5)),
    _entry(
        "STEP_OUTPUT",
        "a",
        _output(
            {
                "maestro/status": "completed",
                "maestro/output": MetadataValue.json({"x": [1, 2.5, None, {"y": "z"}], "ok": True}),
                "maestro/artifacts": MetadataValue.json([]),
                "maestro/quality_score": 0.75,
                "count": 3,
                "flag": MetadataValue.bool(False),
                "maestro/condition": MetadataValue.null(),
            }
        ),
    ),
    _entry("STEP_OUTPUT", "a", _output({})),
]
SLOW = [
    _entry("STEP_FAILURE", "a", StepFailureData(error=ERROR, user_failure_data=None)),
    _entry("STEP_UP_FOR_RETRY", "a", StepRetryData(error=ERROR, seconds_to_wait=2.0)),
    _entry("STEP_RESTARTED", "a", message='Started re-execution (attempt # 3) of step "a".'),
    _entry("PIPELINE_FAILURE", data=None, message="Execution of run failed."),
    _entry("STEP_OUTPUT", "a", _output({"link": MetadataValue.url("http://x"), "md": MetadataValue.md("*")})),
    _entry("STEP_OUTPUT", "a", _output({"path": MetadataValue.path("/tmp/f")})),
]


@pytest.mark.parametrize("serialized", FAST + SLOW)
def test_decode_event_matches_dagster_deserialization(serialized: str) -> None:
    assert decode_event(42, serialized) == _slow(42, serialized)


@pytest.mark.parametrize("serialized", FAST)
def test_common_events_take_the_fast_path(serialized: str) -> None:
    assert _fast(7, json.loads(serialized)) == _slow(7, serialized)
