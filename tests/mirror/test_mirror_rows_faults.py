"""What the rows say after faults and re-runs (issue 12, point 5), on real runs, processes and databases.

- A run whose worker is SIGKILLed (failed by the catch-up loop, as ``maestro mirror sync`` does): the execution
  names the node that was running (``error_node_id``, ``workflow_failed.data.failed_node``), and its
  ``node_failed`` has the documented ``error_type`` and ``attempts``.
- A node that completes after failed attempts (retries, or a resume) keeps no error in ``node_states``: the
  failures stay in the events.
- A node stopped by a cancel says who stopped it and when, from the run's tags and status.
- ``duration_seconds`` is ``completed_at - started_at`` (Dagster's own step time is ``step_seconds``).
- Rows of an execution marked for mirroring again (``mirror_complete = false``) are rebuilt by the catch-up
  loop, and ``mirror verify`` sees the fields it compares (failed node, error type, artifacts).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest
from _defs import definition, node
from _mirror_support import events, execution, maestro_cli, nodes, runs
from dagster import DagsterRunStatus
from sqlalchemy import delete, select, text, update

from maestro_dagster.db.models import Artifact, ExecutionRun, NodeState, WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.mirror.live import TAG_WORKER_PID
from maestro_dagster.mirror.store import TAG_CANCELLED_BY, TAG_PAUSE
from maestro_dagster.mirror.sync import sync_runs

WAIT = 180.0  # generous: the machine may be loaded; every wait ends as soon as its condition holds


def wait_until(predicate, what: str, proc=None, timeout: float = WAIT):
    """``predicate()``'s first truthy value; fails with what was last seen (and the process's output if it ended)."""
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended before {what}:\n{proc.communicate()[0]}")
        try:
            seen = predicate()
        except Exception as exc:  # a row not there yet
            seen = exc
        if seen and not isinstance(seen, Exception):
            return seen
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {seen!r}")


def descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
    out, frontier = [], [pid]
    while frontier:
        frontier = [p for p, ppid in parents.items() if ppid in frontier]
        out.extend(frontier)
    return out


def execution_of(settings, workflow_id: str) -> str | None:
    with get_db(settings) as session:
        return session.scalars(select(WorkflowExecution.id).where(WorkflowExecution.workflow_id == workflow_id)).first()


def running(settings, workflow_id: str, node_id: str) -> str | None:
    """The execution id once ``node_id`` is running in node_states."""
    execution_id = execution_of(settings, workflow_id)
    if execution_id and nodes(settings, execution_id)[node_id].status.value == "running":
        return execution_id
    return None


def errors_in_states(settings, execution_id: str) -> list[str]:
    """The analyst's query: nodes with an error."""
    with get_db(settings) as session:
        sql = text("SELECT node_id FROM node_states WHERE execution_id = :e AND error_message IS NOT NULL")
        return sorted(session.execute(sql, {"e": execution_id}).scalars())


def by_type(evs, event_type: str, node_id: str | None = None):
    return [e for e in evs if e.event_type.value == event_type and (node_id is None or e.node_id == node_id)]


def assert_duration_is_the_attempt(state: NodeState) -> None:
    assert state.duration_seconds == round((state.completed_at - state.started_at).total_seconds(), 6)


KILL_FLOW = definition(
    "kill_flow",
    {"a": node(), "nap": node("sleep", config={"seconds": 300}), "after": node()},
    [("a", "nap"), ("nap", "after")],
)


def test_a_killed_run_names_the_node_it_was_running(maestro_env):
    maestro_env.add_definition(KILL_FLOW)
    settings, instance = maestro_env.settings, maestro_env.instance
    proc = maestro_cli(maestro_env, "run", "kill_flow")  # multiprocess executor: nap runs in a step process
    steps: list[int] = []
    try:
        execution_id = wait_until(lambda: running(settings, "kill_flow", "nap"), "node nap running", proc)
        (run_row,) = runs(settings, execution_id)
        worker = int(instance.get_run_by_id(run_row.run_id).tags[TAG_WORKER_PID])
        steps = descendants(worker)
        os.kill(worker, signal.SIGKILL)
        proc.wait(60)
        report = sync_runs(instance, settings=settings)  # what `maestro mirror sync` (and the sensor) does
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in steps:  # the step process ends with its worker; never leave one behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert report.failed_dead_runs == [run_row.run_id]
    assert instance.get_run_by_id(run_row.run_id).status == DagsterRunStatus.FAILURE

    ex = execution(settings, execution_id)
    assert (ex.status.value, ex.error_node_id) == ("failed", "nap")
    assert f"pid {worker}" in ex.error_message and "died" in ex.error_message  # the run's own failure
    states = nodes(settings, execution_id)
    nap = states["nap"]
    assert (nap.status.value, nap.error_type, nap.attempt_count) == ("failed", "RunEnded", 1)
    assert nap.error_message == "the run ended (failed) while this node was running"
    assert_duration_is_the_attempt(nap)
    assert states["after"].status.value == "blocked"
    assert errors_in_states(settings, execution_id) == ["nap"]

    evs = events(settings, execution_id)
    (failed,) = by_type(evs, "workflow_failed")
    assert (failed.data["failed_node"], failed.data["error"]) == ("nap", ex.error_message)
    (nap_failed,) = by_type(evs, "node_failed", "nap")
    assert nap_failed.data == {"error": nap.error_message, "error_type": "RunEnded", "attempts": 1}
    assert maestro_env.verify(execution_id) == []


def test_a_node_that_completes_after_failing_keeps_no_error(maestro_env, tmp_path):
    raw = definition(
        "recover_flow",
        {
            "retried": node(
                "flaky",
                config={"succeed_on_attempt": 2, "counter_file": str(tmp_path / "retried.count")},
                retry_policy={"max_attempts": 2, "retry_on_failure": True},
            ),
            "resumed": node("flaky", config={"succeed_on_attempt": 2, "counter_file": str(tmp_path / "resumed.count")}),
        },
        [],
    )
    maestro_env.add_definition(raw)
    settings = maestro_env.settings
    first = maestro_env.run("recover_flow")
    assert not first.success
    assert errors_in_states(settings, first.execution_id) == ["resumed"]
    assert maestro_env.resume(first.execution_id).success

    ex = execution(settings, first.execution_id)
    assert (ex.status.value, ex.error_node_id, ex.error_message) == ("completed", None, None)
    states = nodes(settings, first.execution_id)
    for node_id, attempts in (("retried", 2), ("resumed", 2)):
        state = states[node_id]
        assert (state.status.value, state.attempt_count) == ("completed", attempts)
        assert (state.error_message, state.error_type) == (None, None)
        assert_duration_is_the_attempt(state)
    assert errors_in_states(settings, first.execution_id) == []

    evs = events(settings, first.execution_id)  # the history is in the events
    (retry,) = by_type(evs, "node_retry", "retried")
    assert retry.data["error"] == "flaky: attempt 1 fails (succeeds on attempt 2)"
    (failure,) = by_type(evs, "node_failed", "resumed")
    assert failure.data == {
        "error": "flaky: attempt 1 fails (succeeds on attempt 2)",
        "error_type": "RuntimeError",
        "attempts": 1,
    }
    for completed in by_type(evs, "node_completed"):
        state = states[completed.node_id]
        if completed.dagster_run_id == state.last_run_id:
            assert completed.data["duration_seconds"] == state.duration_seconds
        assert 0 <= completed.data["step_seconds"] <= completed.data["duration_seconds"]
    assert maestro_env.verify(first.execution_id) == []


CANCEL_FLOW = definition(
    "stop_flow",
    {"a": node(), "long": node("sleep", config={"seconds": 300}), "after": node()},
    [("a", "long"), ("long", "after")],
)
WHO = {
    "dagster": ({}, "cancelled", "a run termination request to Dagster (the Dagster UI or its GraphQL API)"),
    "pause": ({TAG_PAUSE: "true"}, "paused", "a pause request"),
    "api user": ({TAG_CANCELLED_BY: "Maestro API user alice"}, "cancelled", "Maestro API user alice"),
    "paused by": ({TAG_PAUSE: "true", TAG_CANCELLED_BY: "bob"}, "paused", "a pause request by bob"),
}


@pytest.mark.parametrize("who", list(WHO))
def test_a_cancelled_node_says_who_stopped_it_and_when(maestro_env, who):
    tags, status, by = WHO[who]
    maestro_env.add_definition(CANCEL_FLOW)
    settings, instance = maestro_env.settings, maestro_env.instance
    # the in-process executor for the cases of a tag, a multiprocess executor for Dagster's own termination
    proc = maestro_cli(maestro_env, "run", "stop_flow", *(["--in-process"] if tags else []))
    try:
        execution_id = wait_until(lambda: running(settings, "stop_flow", "long"), "node long running", proc)
        (run_row,) = runs(settings, execution_id)
        run = instance.get_run_by_id(run_row.run_id)
        if tags:  # what the API's pause (and cancel) set before asking Dagster to terminate the run
            instance.add_run_tags(run.run_id, tags)
        instance.report_run_canceling(run)  # Dagster's termination: the run is CANCELING, its worker interrupted
        os.kill(int(run.tags[TAG_WORKER_PID]), signal.SIGINT)
        proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert instance.get_run_by_id(run_row.run_id).status == DagsterRunStatus.CANCELED

    long = nodes(settings, execution_id)["long"]
    assert (long.status.value, long.error_type) == ("failed", "DagsterExecutionInterruptedError")
    assert long.error_message == f"cancelled by {by} at {long.completed_at:%Y-%m-%d %H:%M:%S} UTC"
    assert_duration_is_the_attempt(long)
    ex = execution(settings, execution_id)
    assert (ex.status.value, ex.error_node_id, ex.error_message) == (status, "long", long.error_message)
    (stopped,) = by_type(events(settings, execution_id), "node_failed", "long")
    assert stopped.data == {"error": long.error_message, "error_type": long.error_type, "attempts": 1}
    assert maestro_env.verify(execution_id) == []


ARTIFACT_FLOW = definition(
    "rebuilt_flow",
    {"doc": {"executor": "phase", "config": {"phase": "design"}}, "b": node("fail", config={"message": "b broke"})},
    [("doc", "b")],
)


def test_verify_sees_the_new_fields_and_a_run_mirrored_again_is_rebuilt(maestro_env):
    """Rows as an older mirror left them (or as someone edited them) are differences; marking the execution's runs
    for mirroring again (``mirror_complete = false``, docs/schema.md) and one catch-up pass rebuilds them."""
    maestro_env.add_definition(ARTIFACT_FLOW)
    settings = maestro_env.settings
    result = maestro_env.run("rebuilt_flow")
    assert not result.success and maestro_env.verify(result.execution_id) == []
    execution_id = result.execution_id
    with get_db(settings) as session:
        ex = update(WorkflowExecution).where(WorkflowExecution.id == execution_id)
        session.execute(ex.values(error_node_id=None))
        session.execute(
            update(NodeState)
            .where(NodeState.execution_id == execution_id, NodeState.node_id == "doc")
            .values(error_message="an earlier failure", error_type="RuntimeError", duration_seconds=0.001)
        )
        session.execute(delete(Artifact).where(Artifact.execution_id == execution_id))
    found = "\n".join(str(d) for d in maestro_env.verify(execution_id))
    for expected in (
        "execution.error_node_id is None, expected 'b'",
        "node doc.error_message is 'an earlier failure', expected None",
        "node doc.error_type is 'RuntimeError', expected None",
        "node doc.duration_seconds is 0.001",
        "missing artifact",
    ):
        assert expected in found, found

    with get_db(settings) as session:
        session.execute(
            update(ExecutionRun).where(ExecutionRun.execution_id == execution_id).values(mirror_complete=False)
        )
    report = sync_runs(maestro_env.instance, settings=settings)
    assert [r.run_id for r in report.runs if r.complete] == [result.run_id]
    assert maestro_env.verify(execution_id) == []
    with get_db(settings) as session:
        (artifact,) = session.scalars(select(Artifact).where(Artifact.execution_id == execution_id))
    assert artifact.dagster_run_id == result.run_id and Path(artifact.file_path).is_file()
