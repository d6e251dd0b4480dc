"""The mirror's rules (``mirror.reducer``) on hand-built views and events: no database, no Dagster run."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

from maestro_dagster.mirror.model import DagsterEventIn, ExecutionView, NodeView, RunView
from maestro_dagster.mirror.projector import apply_events
from maestro_dagster.states import EventType, NodeStatus, RunKind, WorkflowStatus
from maestro_dagster.tags import META_INPUTS, META_OUTPUT, META_STATUS

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
NODES = ("a", "b", "c")  # a -> b -> c, plus whatever a test needs


def ev(run_id: str, storage_id: int, event_type: str, step: str | None = None, **fields) -> DagsterEventIn:
    return DagsterEventIn(run_id, storage_id, event_type, T0 + timedelta(seconds=storage_id), step, **fields)


def output(run_id: str, storage_id: int, step: str, value: dict) -> DagsterEventIn:
    meta = {META_STATUS: "completed", META_OUTPUT: value, META_INPUTS: {"upstream": {}, "config": {}}}
    return ev(run_id, storage_id, "STEP_OUTPUT", step, metadata=meta)


def make_view(*run_ids: str, max_retries: int = 0) -> ExecutionView:
    runs = {
        run_id: RunView(
            run_id,
            order=float(i),
            kind=RunKind.INITIAL if i == 0 else RunKind.RESUME,
            parent_run_id=run_ids[i - 1] if i else None,
            root_run_id=run_ids[0],
        )
        for i, run_id in enumerate(run_ids)
    }
    nodes = {n: NodeView(node_id=n, max_retries=max_retries) for n in NODES}
    return ExecutionView("exec_wf_20260101_120000_abcdef01", "wf", nodes, runs, total_nodes=len(NODES))


def failing_run(run_id: str = "r1") -> list[DagsterEventIn]:
    """a completes; b fails once, is retried (attempt 2) and fails again; c never starts."""
    return [
        ev(run_id, 1, "PIPELINE_START"),
        ev(run_id, 2, "STEP_START", "a", attempt=1),
        output(run_id, 3, "a", {"answer": 42}),
        ev(run_id, 4, "STEP_SUCCESS", "a", duration_ms=1500),
        ev(run_id, 5, "STEP_START", "b", attempt=1),
        ev(run_id, 6, "STEP_UP_FOR_RETRY", "b", error_message="boom 1", error_type="RuntimeError"),
        ev(run_id, 7, "STEP_RESTARTED", "b"),  # no attempt number in the message: the next one
        ev(run_id, 8, "STEP_FAILURE", "b", error_message="boom 2", error_type="RuntimeError"),
        ev(run_id, 9, "PIPELINE_FAILURE", message="step b failed"),
    ]


def rows(reducer) -> list[tuple]:
    return [(e.event_type, e.node_id, e.data, e.run_id, e.storage_id, e.part) for e in reducer.events]


def test_a_failing_run_gives_the_expected_view_and_rows():
    view = make_view("r1", max_retries=1)
    reducer = apply_events(view, failing_run(), {})
    a, b, c = (view.nodes[n] for n in NODES)
    # duration_seconds is completed_at - started_at (events 2 -> 4: 2 s); Dagster's own 1.5 s is step_seconds
    assert (a.status, a.attempt_count, a.outputs, a.duration_seconds) == (NodeStatus.COMPLETED, 1, {"answer": 42}, 2.0)
    assert (b.status, b.attempt_count, b.error_message, b.error_type) == (
        NodeStatus.FAILED,
        2,
        "boom 2",
        "RuntimeError",
    )
    assert (c.status, c.attempt_count, c.last_run_id) == (NodeStatus.BLOCKED, 0, "r1")
    assert (view.status, view.error_node_id, view.error_message) == (WorkflowStatus.FAILED, "b", "boom 2")
    assert (view.completed_nodes, view.failed_nodes, view.progress_percent) == (1, 1, 33.33)
    assert view.runs["r1"].status is WorkflowStatus.FAILED and view.current_phase == "b"
    got = [(e.event_type, e.node_id, e.storage_id, e.part) for e in reducer.events]
    assert got == [
        (EventType.WORKFLOW_STARTED, None, 1, 0),
        (EventType.NODE_STARTED, "a", 2, 0),
        (EventType.NODE_COMPLETED, "a", 4, 0),
        (EventType.NODE_STARTED, "b", 5, 0),
        (EventType.NODE_RETRY, "b", 6, 0),
        (EventType.NODE_STARTED, "b", 7, 0),
        (EventType.NODE_FAILED, "b", 8, 0),
        (EventType.NODE_BLOCKED, "c", 9, 1),
        (EventType.WORKFLOW_FAILED, None, 9, 0),
    ]
    data = {(e.event_type, e.storage_id): e.data for e in reducer.events}
    assert data[(EventType.NODE_RETRY, 6)] == {"attempt": 1, "delay": 0, "error": "boom 1"}
    assert data[(EventType.NODE_STARTED, 7)] == {"attempt": 2, "max_attempts": 2, "total_attempts": 2}
    assert data[(EventType.NODE_FAILED, 8)]["attempts"] == 2
    assert data[(EventType.NODE_COMPLETED, 4)] == {
        "attempt": 1,
        "duration_seconds": 2.0,
        "step_seconds": 1.5,
        "output": {"answer": 42},
    }
    assert data[(EventType.WORKFLOW_FAILED, 9)]["failed_node"] == "b"


def test_applying_the_same_events_twice_gives_the_same_view_and_rows():
    view = make_view("r1", max_retries=1)
    first = apply_events(view, failing_run(), {})
    after_first = copy.deepcopy(view)
    second = apply_events(view, failing_run(), {})
    assert view == after_first
    assert rows(second) == rows(first)


@pytest.mark.parametrize("split", range(1, len(failing_run())))
def test_incremental_passes_equal_one_pass(split):
    """The live mirror reads a run in pieces; a later full pass replays everything: all end the same."""
    events = failing_run()
    whole = make_view("r1", max_retries=1)
    whole_rows = rows(apply_events(whole, events, {}))
    pieces = make_view("r1", max_retries=1)
    piece_rows = rows(apply_events(pieces, events[:split], {})) + rows(apply_events(pieces, events[split:], {}))
    assert pieces == whole and piece_rows == whole_rows
    replay = rows(apply_events(pieces, events, {}))  # the terminal full pass
    assert pieces == whole and replay == whole_rows


def test_a_failure_reported_twice_ends_the_run_once():
    """The launcher's reaper and the catch-up loop can both report a dead worker's run failed."""
    events = [
        *failing_run()[:5],
        ev("r1", 6, "PIPELINE_FAILURE", message="worker exited with code -9"),
        ev("r1", 7, "PIPELINE_FAILURE", message="the process running this run died"),
    ]
    whole = make_view("r1")
    whole_rows = rows(apply_events(whole, events, {}))
    ends = [r for r in whole_rows if r[0] is EventType.WORKFLOW_FAILED]
    assert [r[4] for r in ends] == [6]
    assert [(r[0], r[1]) for r in whole_rows if r[4] == 6] == [
        (EventType.NODE_FAILED, "b"),
        (EventType.NODE_BLOCKED, "c"),
        (EventType.WORKFLOW_FAILED, None),
    ]
    assert whole.error_message == "worker exited with code -9" and whole.runs["r1"].completed_at == events[5].timestamp
    for split in (6, 7):  # the second report read by a later pass; then the terminal full pass
        pieces = make_view("r1")
        piece_rows = rows(apply_events(pieces, events[:split], {})) + rows(apply_events(pieces, events[split:], {}))
        assert pieces == whole and piece_rows == whole_rows
        assert rows(apply_events(pieces, events, {})) == whole_rows and pieces == whole


def test_step_start_after_success_of_the_same_attempt_does_not_move_the_node_back():
    view = make_view("r1")
    events = [ev("r1", 1, "PIPELINE_START"), ev("r1", 2, "STEP_START", "a", attempt=1)]
    events += [output("r1", 3, "a", {"x": 1}), ev("r1", 4, "STEP_SUCCESS", "a", duration_ms=10)]
    apply_events(view, events, {})
    completed = copy.deepcopy(view.nodes["a"])
    reducer = apply_events(view, [ev("r1", 2, "STEP_START", "a", attempt=1)], {})
    assert view.nodes["a"] == completed
    assert (completed.status, completed.attempt_count) == (NodeStatus.COMPLETED, 1)
    assert [(e.event_type, e.storage_id) for e in reducer.events] == [(EventType.NODE_STARTED, 2)]  # same key


def test_an_old_runs_failure_after_a_newer_runs_success_changes_nothing():
    view = make_view("r1", "r2")
    newer = [ev("r2", 20, "PIPELINE_START"), ev("r2", 21, "STEP_START", "b", attempt=1)]
    newer += [output("r2", 22, "b", {"ok": True}), ev("r2", 23, "STEP_SUCCESS", "b", duration_ms=5)]
    apply_events(view, newer, {})
    before = copy.deepcopy(view)
    late = [ev("r1", 5, "STEP_START", "b", attempt=1), ev("r1", 8, "STEP_FAILURE", "b", error_message="old")]
    reducer = apply_events(view, late, {})
    assert view == before
    b = view.nodes["b"]
    assert (b.status, b.last_run_id, b.error_message, b.outputs) == (NodeStatus.COMPLETED, "r2", None, {"ok": True})
    assert view.error_node_id is None and view.status is WorkflowStatus.RUNNING
    assert [e.event_type for e in reducer.events] == [EventType.NODE_STARTED, EventType.NODE_FAILED]  # r1's log


def test_run_start_after_run_success_leaves_the_execution_completed():
    view = make_view("r1")
    events = [ev("r1", 1, "PIPELINE_START")]
    for i, node in enumerate(NODES):
        sid = 10 * (i + 1)
        events += [ev("r1", sid, "STEP_START", node, attempt=1), output("r1", sid + 1, node, {"n": node})]
        events.append(ev("r1", sid + 2, "STEP_SUCCESS", node, duration_ms=1))
    events.append(ev("r1", 99, "PIPELINE_SUCCESS"))
    apply_events(view, events, {})
    assert view.status is WorkflowStatus.COMPLETED and view.progress_percent == 100.0
    completed_at = view.completed_at
    assert view.final_context["outputs"] == {n: {"n": n} for n in NODES}

    apply_events(view, [ev("r1", 1, "PIPELINE_START")], {})
    assert view.status is WorkflowStatus.COMPLETED and view.completed_at == completed_at
    assert view.runs["r1"].status is WorkflowStatus.COMPLETED


def test_blocked_only_when_the_latest_run_fails_or_is_cancelled():
    # success of the latest run: nothing is blocked
    view = make_view("r1")
    reducer = apply_events(view, [ev("r1", 1, "PIPELINE_START"), ev("r1", 2, "PIPELINE_SUCCESS")], {})
    assert {n.status for n in view.nodes.values()} == {NodeStatus.PENDING}
    assert EventType.NODE_BLOCKED not in [e.event_type for e in reducer.events]

    # failure of an older run, once a newer one exists: nothing is blocked and the status is the newer run's
    view = make_view("r1", "r2")
    apply_events(view, [ev("r2", 20, "PIPELINE_START"), ev("r2", 21, "STEP_START", "a", attempt=1)], {})
    reducer = apply_events(view, [ev("r1", 9, "PIPELINE_FAILURE", message="old")], {})
    assert view.status is WorkflowStatus.RUNNING and view.runs["r1"].status is WorkflowStatus.FAILED
    assert (view.nodes["a"].status, view.nodes["b"].status) == (NodeStatus.RUNNING, NodeStatus.PENDING)
    assert [e.event_type for e in reducer.events] == [EventType.WORKFLOW_FAILED]

    # cancel of the latest run: the running node fails, the others are blocked
    reducer = apply_events(view, [ev("r2", 30, "PIPELINE_CANCELED")], {})
    assert view.status is WorkflowStatus.CANCELLED
    assert (view.nodes["a"].status, view.nodes["a"].error_type) == (NodeStatus.FAILED, "RunEnded")
    assert {view.nodes[n].status for n in ("b", "c")} == {NodeStatus.BLOCKED}
    assert [(e.event_type, e.node_id, e.part) for e in reducer.events] == [
        (EventType.NODE_FAILED, "a", 1),
        (EventType.NODE_BLOCKED, "b", 2),
        (EventType.NODE_BLOCKED, "c", 3),
        (EventType.WORKFLOW_CANCELLED, None, 0),
    ]
    assert rows(apply_events(view, [ev("r2", 30, "PIPELINE_CANCELED")], {})) == rows(reducer)  # replay: same rows


def test_a_cancel_requested_as_a_pause_pauses_the_execution():
    view = make_view("r1")
    reducer = apply_events(view, [ev("r1", 1, "PIPELINE_START"), ev("r1", 5, "PIPELINE_CANCELED")], {"r1": True})
    assert view.status is WorkflowStatus.PAUSED and view.paused_at is not None and view.completed_at is None
    assert reducer.events[-1].event_type is EventType.WORKFLOW_PAUSED
    assert {n.status for n in view.nodes.values()} == {NodeStatus.BLOCKED}
