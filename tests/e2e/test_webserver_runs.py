"""Runs launched through a real webserver (GraphQL), dequeued by a real daemon, executed by run workers.

Every run must end mirrored into Maestro's tables (by the run itself, or by the daemon's sensor when the
run's own mirror did not happen) with ``maestro mirror verify`` reporting no difference.
"""

from __future__ import annotations

import time

import pytest
from _e2e_home import Stack
from _e2e_procs import wait_for
from dagster import DagsterRunStatus
from dagster_graphql.client.query import LAUNCH_PIPELINE_REEXECUTION_MUTATION

from maestro_dagster.names import EXECUTION_ID_RE, execution_id_for_run
from maestro_dagster.tags import TAG_EXECUTION_ID

pytestmark = pytest.mark.e2e
FINISHED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)


def wait_run_finished(stack: Stack, run_id: str, timeout: float = 300):
    run = wait_for(
        lambda: (r := stack.run(run_id)) is not None and r.status in FINISHED and r,
        timeout,
        f"Dagster run {run_id} to finish",
        interval=0.5,
    )
    return run


def test_graphql_launch_is_mirrored(e2e: Stack):
    started = time.monotonic()
    run_id = e2e.launch("e2e_flow", {"requirement": "from the webserver"})
    run = wait_run_finished(e2e, run_id)
    print(f"run {run_id} finished {run.status.value} in {time.monotonic() - started:.1f}s")
    assert run.status == DagsterRunStatus.SUCCESS

    row = e2e.wait_run_mirrored(run_id)
    record = e2e.instance.get_run_record_by_id(run_id)
    execution_id = execution_id_for_run("e2e_flow", run_id, record.create_timestamp)
    assert row.execution_id == execution_id and EXECUTION_ID_RE.match(execution_id)
    # launched like the UI does, without an execution id: the run coordinator tagged it with the mirror's id
    assert run.tags[TAG_EXECUTION_ID] == execution_id
    assert row.trigger == "dagster" and row.kind.value == "initial" and row.status.value == "completed"

    execution = e2e.execution(execution_id)
    assert execution.status.value == "completed"
    assert execution.initial_context == {"requirement": "from the webserver"}
    assert (execution.total_nodes, execution.completed_nodes, execution.failed_nodes) == (3, 3, 0)
    assert execution.progress_percent == 100
    nodes = e2e.nodes(execution_id)
    assert {n: s.status.value for n, s in nodes.items()} == dict.fromkeys(
        ("extract", "transform", "report"), "completed"
    )
    assert all(s.attempt_count == 1 and s.last_run_id == run_id for s in nodes.values())

    types = [e.event_type.value for e in e2e.events(execution_id)]
    assert types[0] == "workflow_started" and types[-1] == "workflow_completed"
    assert types.count("workflow_completed") == 1
    assert types.count("node_started") == types.count("node_completed") == 3
    assert "artifact_created" in types
    assert e2e.verify(run_id).returncode == 0


IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


def event_keys(stack: Stack, execution_id: str) -> list[tuple]:
    return [(e.event_type.value, e.node_id, e.dagster_run_id, e.dagster_storage_id) for e in stack.events(execution_id)]


def test_sensor_catches_up_what_the_run_did_not_mirror(e2e: Stack):
    run_id = e2e.launch("e2e_flow", {"case": "catch-up"}, **IN_PROCESS)
    assert wait_run_finished(e2e, run_id).status == DagsterRunStatus.SUCCESS
    execution_id = e2e.wait_run_mirrored(run_id).execution_id
    before = event_keys(e2e, execution_id)
    e2e.delete_execution(execution_id)  # as if the run had never mirrored itself
    assert e2e.execution(execution_id) is None and e2e.run_row(run_id) is None

    deleted = time.monotonic()
    row = e2e.wait_run_mirrored(run_id, timeout=120)
    took = time.monotonic() - deleted
    print(f"maestro_mirror_sensor recreated the execution {took:.1f}s after its rows were deleted")
    assert row.execution_id == execution_id
    assert e2e.execution(execution_id).status.value == "completed"
    assert {s.status.value for s in e2e.nodes(execution_id).values()} == {"completed"}
    assert event_keys(e2e, execution_id) == before  # the same events, each once
    assert e2e.verify(run_id).returncode == 0


def test_reexecution_from_failure_through_graphql(e2e: Stack):
    counter = e2e.work / "flaky.count"
    counter.unlink(missing_ok=True)  # fails on its first attempt, succeeds on the second
    first = e2e.launch("e2e_flaky", {"case": "resume"}, **IN_PROCESS)
    assert wait_run_finished(e2e, first).status == DagsterRunStatus.FAILURE
    execution_id = e2e.wait_run_mirrored(first).execution_id
    assert e2e.execution(execution_id).status.value == "failed"
    states = {n: s.status.value for n, s in e2e.nodes(execution_id).items()}
    assert states == {"prepare": "completed", "flaky": "failed", "finish": "blocked"}

    data = e2e.graphql(
        LAUNCH_PIPELINE_REEXECUTION_MUTATION,
        {"reexecutionParams": {"parentRunId": first, "strategy": "FROM_FAILURE"}},
    )["launchPipelineReexecution"]
    assert data["__typename"] == "LaunchRunSuccess", data
    second = data["run"]["runId"]
    assert data["run"]["rootRunId"] == data["run"]["parentRunId"] == first
    assert wait_run_finished(e2e, second).status == DagsterRunStatus.SUCCESS

    row = e2e.wait_run_mirrored(second)
    assert row.execution_id == execution_id  # the same execution
    runs = e2e.runs(execution_id)
    assert [(r.run_id, r.kind.value, r.parent_run_id) for r in runs] == [
        (first, "initial", None),
        (second, "resume", first),
    ]
    execution = e2e.execution(execution_id)
    assert execution.status.value == "completed" and execution.completed_nodes == 3
    nodes = e2e.nodes(execution_id)
    assert {n: s.status.value for n, s in nodes.items()} == dict.fromkeys(("prepare", "flaky", "finish"), "completed")
    assert nodes["flaky"].attempt_count == 2 and nodes["prepare"].attempt_count == 1
    types = [e.event_type.value for e in e2e.events(execution_id)]
    assert types.count("workflow_resumed") == 1 and types.count("workflow_failed") == 1
    assert types[-1] == "workflow_completed" and types.count("workflow_completed") == 1
    assert e2e.verify(first, second).returncode == 0
