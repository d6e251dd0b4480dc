"""Retries, timeouts and failure semantics of compiled jobs, checked in the run's event log."""

from __future__ import annotations

import time

import pytest
from _compiler_support import PY, failure_text, job_from_raw, pid_alive, reconstructable_job, run
from _compiler_support import step_events as events_of
from _defs import definition, echo
from dagster import Backoff, DagsterEventType, RetryPolicy, execute_job

from maestro_dagster.compiler import retry_policy_for
from maestro_dagster.names import op_name
from maestro_dagster.spec import RetryPolicySpec

FLAKY = "maestro_examples.nodes:flaky"


def _flaky(counter, *, retry_on_failure: bool, max_attempts: int = 3, succeed_on: int = 3) -> dict:
    return definition(
        "flaky_wf",
        {
            "flaky": {
                "executor": FLAKY,
                "config": {"counter_file": str(counter), "succeed_on_attempt": succeed_on},
                "retry_policy": {"max_attempts": max_attempts, "retry_on_failure": retry_on_failure},
            },
            "after": echo(),
        },
        [("flaky", "after")],
    )


# ---- retries ---------------------------------------------------------------------------------------
def test_flaky_node_succeeds_on_its_third_attempt(instance, tmp_path):
    counter = tmp_path / "attempts.txt"
    result = run(_flaky(counter, retry_on_failure=True), instance)
    assert result.success
    assert counter.read_text() == "3"
    assert events_of(instance, result.run_id, DagsterEventType.STEP_UP_FOR_RETRY) == ["flaky", "flaky"]
    assert events_of(instance, result.run_id, DagsterEventType.STEP_RESTARTED) == ["flaky", "flaky"]
    assert events_of(instance, result.run_id, DagsterEventType.STEP_START).count("flaky") == 1
    assert events_of(instance, result.run_id, DagsterEventType.STEP_FAILURE) == []
    assert "flaky" in events_of(instance, result.run_id, DagsterEventType.STEP_SUCCESS)
    assert result.output_for_node("flaky").output == {"status": "completed", "attempts": 3}
    assert result.output_for_node("after").output["dependencies"] == ["flaky"]


def test_retries_off_fails_on_the_first_attempt(instance, tmp_path):
    counter = tmp_path / "attempts.txt"
    result = run(_flaky(counter, retry_on_failure=False), instance)
    assert not result.success
    assert counter.read_text() == "1"
    assert events_of(instance, result.run_id, DagsterEventType.STEP_UP_FOR_RETRY) == []
    assert events_of(instance, result.run_id, DagsterEventType.STEP_FAILURE) == ["flaky"]
    assert "flaky: attempt 1 fails (succeeds on attempt 3)" in failure_text(result, "flaky")


def test_retries_exhausted_fail_the_node_after_max_attempts(instance, tmp_path):
    counter = tmp_path / "attempts.txt"
    result = run(_flaky(counter, retry_on_failure=True, max_attempts=2, succeed_on=5), instance)
    assert not result.success
    assert counter.read_text() == "2"
    assert events_of(instance, result.run_id, DagsterEventType.STEP_UP_FOR_RETRY) == ["flaky"]
    assert "attempt 2 fails" in failure_text(result, "flaky")


def test_retries_across_processes_with_the_multiprocess_executor(disk_instance, tmp_path):
    counter = tmp_path / "attempts.txt"
    with execute_job(
        reconstructable_job(_flaky(counter, retry_on_failure=True)),
        instance=disk_instance,
        run_config={"initial_context": {}},
    ) as result:
        assert result.success
        run_id = result.run_id
    assert counter.read_text() == "3"
    assert events_of(disk_instance, run_id, DagsterEventType.STEP_UP_FOR_RETRY) == ["flaky", "flaky"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            RetryPolicySpec(max_attempts=4, retry_delay_seconds=2.5, retry_on_failure=True, exponential_backoff=True),
            RetryPolicy(max_retries=3, delay=2.5, backoff=Backoff.EXPONENTIAL),
        ),
        (RetryPolicySpec(max_attempts=2, retry_delay_seconds=0, retry_on_failure=True), RetryPolicy(max_retries=1)),
        (RetryPolicySpec(max_attempts=5, retry_on_failure=False), None),
        (RetryPolicySpec(max_attempts=1, retry_on_failure=True), None),
    ],
)
def test_retry_policy_for(spec, expected):
    policy = retry_policy_for(spec)
    if expected is None:
        assert policy is None
    else:
        assert (policy.max_retries, policy.delay, policy.backoff) == (
            expected.max_retries,
            expected.delay,
            expected.backoff,
        )


def test_op_retry_policies_come_from_node_then_defaults():
    raw = definition(
        "retry_defaults",
        {"uses_default": {}, "own": {"retry_policy": {"max_attempts": 3, "retry_on_failure": True}}},
        defaults={"retry_policy": {"max_attempts": 5, "retry_delay_seconds": 1, "retry_on_failure": True}},
    )
    job = job_from_raw(raw)
    op_defs = {op_def.name: op_def for op_def in job.graph.node_defs}
    default_policy = op_defs[op_name("retry_defaults", "uses_default")].retry_policy
    own_policy = op_defs[op_name("retry_defaults", "own")].retry_policy
    assert (default_policy.max_retries, default_policy.delay, default_policy.backoff) == (4, 1, None)
    assert (own_policy.max_retries, own_policy.delay) == (2, None)


# ---- timeouts --------------------------------------------------------------------------------------
def test_sleeping_node_fails_at_its_timeout(instance):
    raw = definition(
        "slow",
        {"sleepy": {"executor": "maestro_examples.nodes:sleep", "timeout_seconds": 1, "config": {"seconds": 10}}},
    )
    started = time.monotonic()
    result = run(raw, instance)
    elapsed = time.monotonic() - started
    assert not result.success
    assert elapsed < 5
    text = failure_text(result, "sleepy")
    assert "NodeTimeoutError" in text
    assert "Node 'sleepy' exceeded its timeout of 1 seconds" in text


def test_default_timeout_applies_to_async_nodes(instance):
    raw = definition(
        "slow_async",
        {"waiter": {"executor": "maestro_examples.nodes:async_echo", "config": {"seconds": 10}}},
        defaults={"timeout_seconds": 0.5},
    )
    started = time.monotonic()
    result = run(raw, instance)
    assert time.monotonic() - started < 5
    assert "Node 'waiter' exceeded its timeout of 0.5 seconds" in failure_text(result, "waiter")


def test_command_outliving_its_timeout_is_killed(instance, tmp_path):
    pid_file = tmp_path / "child.pid"
    code = f"import os, pathlib, time; pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid())); time.sleep(60)"
    raw = definition(
        "slow_cmd",
        {"cmd": {"executor": "command", "timeout_seconds": 1, "config": {"args": [PY, "-c", code]}}},
    )
    started = time.monotonic()
    result = run(raw, instance)
    elapsed = time.monotonic() - started
    assert not result.success
    assert elapsed < 10
    assert "Node 'cmd' exceeded its timeout of 1 seconds; its process group was killed" in failure_text(result, "cmd")
    pid = int(pid_file.read_text())
    assert not pid_alive(pid)


# ---- failure semantics -----------------------------------------------------------------------------
def _failing_workflow() -> dict:
    return definition(
        "partial",
        {
            "broken": {"executor": "maestro_examples.nodes:fail", "config": {"message": "disk on fire"}},
            "after_broken": echo(),
            "after_after": echo(),
            "independent": echo(),
            "after_independent": echo(),
        },
        [("broken", "after_broken"), ("after_broken", "after_after"), ("independent", "after_independent")],
    )


def test_downstream_of_a_failure_never_starts_while_independent_branch_completes(instance):
    result = run(_failing_workflow(), instance)
    assert not result.success
    assert result.dagster_run.is_failure
    started = events_of(instance, result.run_id, DagsterEventType.STEP_START)
    assert sorted(started) == ["after_independent", "broken", "independent"]
    assert sorted(events_of(instance, result.run_id, DagsterEventType.STEP_SUCCESS)) == [
        "after_independent",
        "independent",
    ]
    assert events_of(instance, result.run_id, DagsterEventType.STEP_FAILURE) == ["broken"]
    assert "RuntimeError: disk on fire" in failure_text(result, "broken")
    assert result.output_for_node("after_independent").output["dependencies"] == ["independent"]


def test_failure_semantics_with_the_multiprocess_executor(disk_instance):
    with execute_job(
        reconstructable_job(_failing_workflow()), instance=disk_instance, run_config={"initial_context": {}}
    ) as result:
        assert not result.success
        run_id = result.run_id
    started = set(events_of(disk_instance, run_id, DagsterEventType.STEP_START))
    assert started == {"broken", "independent", "after_independent"}
    assert set(events_of(disk_instance, run_id, DagsterEventType.STEP_SUCCESS)) == {"independent", "after_independent"}
    assert disk_instance.get_run_by_id(run_id).is_failure
