"""The run's own mirror follows it while it runs (periodic passes on a kept view), also when a catch-up pass
from elsewhere writes the same execution in between; the rows end exactly as a full replay makes them."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from _defs import definition, linear, node
from _mirror_support import snapshot
from dagster import DagsterRunStatus
from sqlalchemy import delete, select

import maestro_dagster.mirror.projector as projector
from maestro_dagster.db.models import NodeState, WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.mirror import mirror_run, sync_runs
from maestro_dagster.mirror.live_view import LiveState
from maestro_dagster.mirror.source import read_events
from maestro_dagster.states import NodeStatus


def test_live_passes_follow_the_run_and_survive_a_catch_up_in_between(maestro_env):
    ids = [f"n{i}" for i in range(1, 6)]
    nodes = {i: node("sleep", config={"seconds": 0.5}) for i in ids}
    maestro_env.add_definition(definition("live_flow", nodes, list(itertools.pairwise(ids))))
    settings = maestro_env.settings
    progress: list[int] = []
    synced: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            with get_db(settings) as session:
                execution_id = session.scalar(
                    select(WorkflowExecution.id).where(WorkflowExecution.workflow_id == "live_flow")
                )
                if execution_id is not None:
                    done = session.scalars(select(NodeState.status).where(NodeState.execution_id == execution_id)).all()
                    progress.append(sum(s is NodeStatus.COMPLETED for s in done))
            if progress and 1 <= progress[-1] <= 3 and not synced:  # mid-run: another writer of the execution
                synced.append(len(sync_runs(maestro_env.instance, settings=settings).runs))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = maestro_env.run("live_flow")
    finally:
        stop.set()
        watcher.join()
    assert result.success
    assert synced == [1], "the catch-up pass ran while the run was going"
    middle = [p for p in progress if 0 < p < len(ids)]
    assert len(set(middle)) >= 3, f"the tables followed the run node by node: {progress}"
    assert progress == sorted(progress), "progress never went backwards"
    assert maestro_env.verify(result.execution_id) == []


def _mirrored(settings, execution_id: str) -> dict[str, list[dict[str, Any]]]:
    """The execution's node states and event rows, without row ids and creation times (re-created here)."""
    snap = snapshot(settings)
    drop = {"id", "created_at"}
    events = [{k: v for k, v in r.items() if k not in drop} for r in snap["execution_events"]]
    states = [{k: v for k, v in r.items() if k not in drop} for r in snap["node_states"]]
    return {
        "events": sorted(events, key=lambda r: (r["dagster_storage_id"], r["dagster_event_part"])),
        "states": sorted(states, key=lambda r: r["node_id"]),
    }


def test_the_full_pass_on_the_kept_view_writes_an_event_the_periodic_passes_missed(maestro_env, monkeypatch):
    """On PostgreSQL an event can commit after one with a higher storage id that a periodic pass already read:
    the live mirror's full pass at the run's end (on the view it kept) must still write it, once."""
    maestro_env.add_definition(linear("late_flow", 3))
    result = maestro_env.run("late_flow")
    settings, instance = maestro_env.settings, maestro_env.instance
    expected = _mirrored(settings, result.execution_id)
    with get_db(settings) as session:  # mirror the run again from nothing, with a live mirror's state
        session.execute(delete(WorkflowExecution).where(WorkflowExecution.id == result.execution_id))
    stored = read_events(instance, result.run_id)
    late = [e for e in stored if e.event_type == "STEP_SUCCESS"][1]  # n2's success
    end = stored[-1].storage_id  # RUN_SUCCESS: written once every step's events are

    def without_late(instance_: Any, run_id: str, after: int = 0) -> list:
        return [e for e in read_events(instance_, run_id, after) if e.storage_id not in (late.storage_id, end)]

    state = LiveState()
    going = instance.get_run_by_id(result.run_id).with_status(DagsterRunStatus.STARTED)
    with monkeypatch.context() as m:  # the periodic pass: the late event has not committed yet
        m.setattr(projector, "read_events", without_late)
        mirror_run(instance, result.run_id, known=going, live=state)
    assert state.cursor > late.storage_id and late.storage_id not in state.written and not state.complete
    missing = _mirrored(settings, result.execution_id)
    assert len(missing["events"]) == len(expected["events"]) - 2  # n2's node_completed, workflow_completed
    assert {s["node_id"]: s["status"] for s in missing["states"]}["n2"] is NodeStatus.RUNNING

    final = mirror_run(instance, result.run_id, live=state)  # the run has ended: its full pass
    assert final.complete and state.complete and state.cached is not None
    assert _mirrored(settings, result.execution_id) == expected
    assert maestro_env.verify(result.execution_id) == []
    assert mirror_run(instance, result.run_id, live=state).complete  # nothing more to do


def test_a_run_that_stores_nothing_costs_no_pass_and_its_events_are_still_mirrored_at_once(maestro_env, monkeypatch):
    """Passes follow events, not wall time: a node sleeping 8 s (no event meanwhile) costs no pass while it sleeps,
    and its start is in the tables while it sleeps (the pass its STEP_START made due). The nap is long so that a
    loaded machine handing events on late (seen: 1.7 s) still leaves a long quiet stretch."""
    from maestro_dagster.mirror.live import LiveMirror

    passes: list[tuple[float, bool]] = []
    original = LiveMirror.pass_once

    def counted(self: LiveMirror, periodic: bool = False) -> None:
        passes.append((time.monotonic(), periodic))
        original(self, periodic)

    monkeypatch.setattr(LiveMirror, "pass_once", counted)
    nodes = {"nap": node("sleep", config={"seconds": 8}), "after": node("echo")}
    maestro_env.add_definition(definition("quiet_flow", nodes, [("nap", "after")]))
    seen_running: list[bool] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            with get_db(maestro_env.settings) as session:
                status = session.scalar(select(NodeState.status).where(NodeState.node_id == "nap"))
            if status is not None:
                seen_running.append(status is NodeStatus.RUNNING)
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = maestro_env.run("quiet_flow")
    finally:
        stop.set()
        watcher.join()
    assert result.success
    assert any(seen_running), "the node's start was mirrored while it slept"
    periodic = [at for at, is_periodic in passes if is_periodic]
    # 0.5 s polling made 16 or more passes in those 8 s; passes that follow events make a handful, none mid-nap
    assert len(periodic) <= 5, f"{len(periodic)} periodic passes"
    gaps = [b - a for a, b in itertools.pairwise(periodic)]
    assert max(gaps, default=0) >= 5, f"no pass while the node slept: gaps {gaps}"
    assert maestro_env.verify(result.execution_id) == []
