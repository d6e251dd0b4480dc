"""Schedules and sensors built from definitions, evaluated without the daemon (real DB, real instance)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from _defs import chain, definition
from dagster import DagsterInstance, build_schedule_context, build_sensor_context

from maestro_dagster.db import RepositoryFactory, get_db
from maestro_dagster.db.models import ExecutionRequest
from maestro_dagster.definitions import MaestroRepositoryData
from maestro_dagster.names import EXECUTION_ID_RE
from maestro_dagster.policy import DefinitionPolicy
from maestro_dagster.spec import validate_definition
from maestro_dagster.states import EventType, RequestStatus, WorkflowStatus
from maestro_dagster.triggers.build import (
    REQUEST_ERRORS_SENSOR,
    build_schedule,
    build_sensor,
    maestro_request_errors,
)

UPSTREAM = {"id": "upstream", "nodes": {"a": {}}}


def flow(**triggers) -> dict:
    return definition("flow", {"a": {}, "b": {}}, chain("a", "b"), **triggers)


def spec_of(raw, env):
    return env.add_definition(raw)


def tick(sensor_def, instance: DagsterInstance, cursor: str | None = None):
    with build_sensor_context(instance=instance, cursor=cursor) as context:
        return sensor_def.evaluate_tick(context)


def test_invalid_triggers_are_validation_errors():
    raw = flow(
        schedules=[{"cron": "not a cron"}, {"cron": "0 2 * * *", "timezone": "Mars/Olympus"}],
        sensors=[
            {"type": "file", "directory": "/x", "name": "same"},
            {"type": "request_queue", "name": "same"},
            {"type": "workflow_completed", "workflow_id": "flow"},
            {"type": "smoke_signal"},
        ],
    )
    report = validate_definition(raw, policy=DefinitionPolicy.allowing())
    text = "\n".join(str(p) for p in report.errors)
    assert not report.ok
    assert "schedule 0" in text and "not a valid cron" in text
    assert "unknown timezone 'Mars/Olympus'" in text
    assert {"duplicate_trigger", "self_trigger"} <= set(report.codes)
    assert "smoke_signal" in text


def test_schedule_names_status_and_run_request(maestro_env):
    spec = spec_of(
        flow(
            schedules=[
                {
                    "cron": "0 2 * * *",
                    "timezone": "Europe/Paris",
                    "enabled": True,
                    "initial_context": {"requirement": "nightly"},
                },
                {"cron": "*/5 * * * *", "name": "often"},
            ]
        ),
        maestro_env,
    )
    nightly, often = build_schedule(spec, 0), build_schedule(spec, 1)
    assert (nightly.name, often.name) == ("flow__schedule_0", "flow__schedule_often")
    assert nightly.default_status.value == "RUNNING" and often.default_status.value == "STOPPED"
    assert (nightly.cron_schedule, nightly.execution_timezone, nightly.job_name) == (
        "0 2 * * *",
        "Europe/Paris",
        "flow",
    )
    at = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    with build_schedule_context(instance=maestro_env.instance, scheduled_execution_time=at) as context:
        data = nightly.evaluate_tick(context)
    (request,) = data.run_requests
    assert request.run_config == {"initial_context": {"requirement": "nightly"}}
    assert request.tags["maestro/trigger"] == "schedule"
    assert EXECUTION_ID_RE.match(request.tags["maestro/execution_id"])
    assert request.tags["maestro/execution_id"].startswith("exec_flow_20261126_020000_")


def test_file_sensor_new_repeated_and_modified_files(maestro_env, tmp_path):
    inbox = tmp_path / "inbox"
    spec = spec_of(flow(sensors=[{"type": "file", "directory": str(inbox), "pattern": "*.csv"}]), maestro_env)
    sensor = build_sensor(spec, 0)
    assert sensor.name == "flow__sensor_file_0" and sensor.default_status.value == "STOPPED"
    first = tick(sensor, maestro_env.instance)
    assert first.skip_message and "does not exist" in first.skip_message
    inbox.mkdir()
    (inbox / "a.csv").write_text("1,2\n")
    (inbox / "b.csv").write_text("3\n")
    (inbox / "ignored.txt").write_text("x")
    data = tick(sensor, maestro_env.instance)
    paths = [r.run_config["initial_context"]["file"]["path"] for r in data.run_requests]
    assert paths == [str((inbox / "a.csv").resolve()), str((inbox / "b.csv").resolve())]
    assert data.run_requests[0].run_config["initial_context"]["file"]["size_bytes"] == 4
    assert len({r.run_key for r in data.run_requests}) == 2
    again = tick(sensor, maestro_env.instance, data.cursor)
    assert again.run_requests == [] and "no new or changed file" in again.skip_message
    stat = (inbox / "a.csv").stat()
    os.utime(inbox / "a.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    changed = tick(sensor, maestro_env.instance, again.cursor)
    assert [r.run_config["initial_context"]["file"]["path"] for r in changed.run_requests] == [
        str((inbox / "a.csv").resolve())
    ]
    assert changed.run_requests[0].run_key != data.run_requests[0].run_key


def test_workflow_completed_sensor(maestro_env, tmp_path):
    maestro_env.add_definition(
        {
            "id": "upstream",
            "nodes": {
                "ok": {
                    "executor": "maestro_examples.nodes:flaky",
                    "config": {"succeed_on_attempt": 2, "counter_file": str(tmp_path / "c")},
                }
            },
        }
    )
    spec = spec_of(
        flow(
            sensors=[
                {
                    "type": "workflow_completed",
                    "workflow_id": "upstream",
                    "statuses": ["completed", "failed"],
                    "context": {"who": "global_context.who", "out": "outputs.ok.attempts"},
                }
            ]
        ),
        maestro_env,
    )
    sensor = build_sensor(spec, 0)
    init = tick(sensor, maestro_env.instance)
    assert "earlier executions do not trigger" in init.skip_message
    failed = maestro_env.run("upstream", {"who": "ann"})
    assert not failed.success
    data = tick(sensor, maestro_env.instance, init.cursor)
    (req,) = data.run_requests
    ctx = req.run_config["initial_context"]
    assert ctx["upstream"] == {"workflow_id": "upstream", "execution_id": failed.execution_id, "status": "failed"}
    assert req.run_key == f"{failed.execution_id}:workflow_failed"
    resumed = maestro_env.resume(failed.execution_id)
    assert resumed.success and resumed.execution_id == failed.execution_id
    data2 = tick(sensor, maestro_env.instance, data.cursor)
    (req2,) = data2.run_requests
    assert req2.run_key == f"{failed.execution_id}:workflow_completed"
    assert req2.run_config["initial_context"]["who"] == "ann"
    assert req2.run_config["initial_context"]["out"] == 2
    assert tick(sensor, maestro_env.instance, data2.cursor).run_requests == []


def test_request_queue_valid_unknown_and_invalid_context(maestro_env):
    spec = spec_of(flow(sensors=[{"type": "request_queue", "enabled": True}]), maestro_env)
    maestro_env.add_definition(UPSTREAM)  # valid, but takes no queued requests
    with get_db(maestro_env.settings) as session:
        session.add_all(
            [
                ExecutionRequest(id="r1", workflow_id="flow", initial_context={"requirement": "x"}, requested_by="t"),
                ExecutionRequest(id="r2", workflow_id="flow", initial_context=["not", "an", "object"]),
                ExecutionRequest(id="r3", workflow_id="nope", initial_context={}),
                ExecutionRequest(id="r4", workflow_id="upstream", initial_context={}),
                ExecutionRequest(id="r5", workflow_id="flow", initial_context=None),
            ]
        )
    sensor = build_sensor(spec, 0)
    assert sensor.default_status.value == "RUNNING"
    data = tick(sensor, maestro_env.instance)
    assert [r.run_key for r in data.run_requests] == ["r1", "r5"]
    assert data.run_requests[0].run_config == {"initial_context": {"requirement": "x"}}
    assert tick(sensor, maestro_env.instance).run_requests == []  # a request never starts twice
    errors = tick(maestro_request_errors, maestro_env.instance)
    assert maestro_request_errors.name == REQUEST_ERRORS_SENSOR and "refused 2" in errors.skip_message
    with get_db(maestro_env.settings) as session:
        rows = {r.id: r for r in session.query(ExecutionRequest)}
        assert rows["r1"].status is RequestStatus.LAUNCHED
        assert rows["r1"].execution_id == data.run_requests[0].tags["maestro/execution_id"]
        assert rows["r2"].status is RequestStatus.ERROR and "must be a JSON object" in rows["r2"].error
        assert rows["r3"].status is RequestStatus.ERROR and "unknown workflow 'nope'" in rows["r3"].error
        assert rows["r4"].status is RequestStatus.ERROR and "does not accept queued requests" in rows["r4"].error


def test_repository_lists_triggers_of_valid_definitions(maestro_env):
    spec_of(flow(schedules=[{"cron": "0 * * * *"}], sensors=[{"type": "request_queue"}]), maestro_env)
    data = MaestroRepositoryData()
    assert [s.name for s in data.get_all_schedules()] == ["flow__schedule_0", "maestro_reporting_rollups"]
    names = {s.name for s in data.get_all_sensors()}
    assert {"maestro_mirror_sensor", REQUEST_ERRORS_SENSOR, "flow__sensor_request_queue_0"} <= names


def test_execution_metadata_records_the_trigger(maestro_env):
    """A run requested by a sensor is mirrored with trigger 'sensor' and the request's execution id."""
    from dagster import execute_job
    from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository

    spec = spec_of(flow(sensors=[{"type": "request_queue"}]), maestro_env)
    with get_db(maestro_env.settings) as session:
        session.add(ExecutionRequest(id="q1", workflow_id="flow", initial_context={"requirement": "queued"}))
    (request,) = tick(build_sensor(spec, 0), maestro_env.instance).run_requests
    ReconstructableJob.get_definition.cache_clear()
    repo = ReconstructableRepository.for_module("maestro_dagster.definitions", "maestro")
    run_config = {**request.run_config, "execution": {"config": {"in_process": {}}}}
    with execute_job(
        repo.get_reconstructable_job("flow"), maestro_env.instance, run_config=run_config, tags=request.tags
    ) as result:
        assert result.success
    execution_id = request.tags["maestro/execution_id"]
    with get_db(maestro_env.settings) as session:  # the run mirrored itself before execute_job returned
        execution = RepositoryFactory(session).execution.require(execution_id)
        assert execution.status is WorkflowStatus.COMPLETED
        assert execution.execution_metadata["trigger"] == "sensor"
        assert execution.initial_context == {"requirement": "queued"}
        events = [e.event_type for e in RepositoryFactory(session).event.list_by_execution(execution_id)]
        assert events[-1] is EventType.WORKFLOW_COMPLETED
    assert maestro_env.verify(execution_id) == []
