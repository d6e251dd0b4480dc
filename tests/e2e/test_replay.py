"""Replay from a node (``maestro resume EXEC --from NODE``): Dagster's step-selection re-execution of the latest run,
mirrored into the same execution, on a real Dagster instance (SQLite and PostgreSQL).

Every node of the chains here is ``flaky`` with ``succeed_on_attempt`` 1 and a counter file of its own: its output
is how many times it ran (``{"attempts": n}``), so the counter files say which nodes ran, and ``b``'s condition
reads ``a``'s output: ``b`` runs only if it was given the output ``a`` produced in the first run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _defs import chain, definition, node
from _mirror_support import assert_event_order, events, execution, maestro_cli, nodes, runs
from _mirror_support import types as types_of

from maestro_dagster.errors import ConflictError, ValidationError
from maestro_dagster.executions.local import resume_workflow

CHAIN = ("a", "b", "c", "d")


def counted(counters: Path, node_id: str, **fields) -> dict:
    """A node whose output counts its runs in ``counters/<node_id>``; it fails while ``counters/<node_id>.fail``
    exists."""
    return node("flaky", config={"counter_file": str(counters / node_id), "succeed_on_attempt": 1}, **fields)


def count(counters: Path, node_id: str) -> int:
    path = counters / node_id
    return int(path.read_text()) if path.exists() else 0


def chain_definition(workflow_id: str, counters: Path) -> dict:
    nodes_ = {n: counted(counters, n) for n in CHAIN}
    # b runs only when it receives a's output of its first run: a re-run a would have attempts 2 and skip b
    nodes_["b"] = counted(counters, "b", condition="outputs['a']['attempts'] == 1")
    return definition(workflow_id, nodes_, chain(*CHAIN))


def replay(env, execution_id: str, from_node: str):
    return resume_workflow(env.instance, execution_id, from_node=from_node, in_process=True)


def test_replay_from_a_middle_node_of_a_completed_execution(maestro_env, tmp_path):
    counters = tmp_path / "counters"
    spec = maestro_env.add_definition(chain_definition("replay_chain", counters))
    settings = maestro_env.settings
    first = maestro_env.run(spec.id, {"requirement": "replay me"})
    assert first.success
    before = nodes(settings, first.execution_id)
    assert {n: before[n].outputs["attempts"] for n in CHAIN} == {n: 1 for n in CHAIN}
    first_end = execution(settings, first.execution_id).completed_at

    second = replay(maestro_env, first.execution_id, "b")
    assert second.success
    assert second.execution_id == first.execution_id and second.run_id != first.run_id

    # a ran once; b, c and d twice (b only because its condition read a's first output)
    assert {n: count(counters, n) for n in CHAIN} == {"a": 1, "b": 2, "c": 2, "d": 2}
    states = nodes(settings, first.execution_id)
    a = states["a"]
    assert (a.status.value, a.attempt_count, a.last_run_id, a.outputs) == ("completed", 1, first.run_id, {
        "status": "completed", "attempts": 1,
    })  # fmt: skip
    assert (a.started_at, a.completed_at) == (before["a"].started_at, before["a"].completed_at)
    for node_id in ("b", "c", "d"):
        state = states[node_id]
        assert state.status.value == "completed", (node_id, state.status, state.error_message)
        assert (state.attempt_count, state.last_run_id) == (2, second.run_id)  # counted on from the first run
        assert state.outputs == {"status": "completed", "attempts": 2}  # new outputs
        assert state.started_at > before[node_id].completed_at
    assert states["b"].inputs["upstream"] == {"a": "completed"}

    ex = execution(settings, first.execution_id)
    assert ex.status.value == "completed" and ex.completed_at > first_end
    assert (ex.total_nodes, ex.completed_nodes, ex.failed_nodes, ex.progress_percent) == (4, 4, 0, 100.0)
    assert ex.final_context["outputs"]["a"]["attempts"] == 1 and ex.final_context["outputs"]["d"]["attempts"] == 2
    initial, replayed = runs(settings, first.execution_id)
    assert (initial.run_id, initial.kind.value, initial.status.value) == (first.run_id, "initial", "completed")
    assert (replayed.run_id, replayed.kind.value, replayed.status.value) == (second.run_id, "replay", "completed")
    assert (replayed.parent_run_id, replayed.root_run_id, replayed.trigger) == (first.run_id, first.run_id, "replay")

    evs = events(settings, first.execution_id)
    assert_event_order(evs)
    assert types_of(evs) == ["workflow_started", "workflow_completed", "workflow_resumed", "workflow_completed"]
    resumed = next(e for e in evs if e.event_type.value == "workflow_resumed")
    assert resumed.data == {"run_id": second.run_id, "kind": "replay", "parent_run_id": first.run_id}
    assert {e.dagster_run_id for e in evs if e.node_id == "a"} == {first.run_id}
    for node_id in ("b", "c", "d"):
        assert types_of(evs, node_id) == ["node_started", "node_completed"] * 2
        started = [e for e in evs if e.node_id == node_id and e.event_type.value == "node_started"]
        assert [e.data["total_attempts"] for e in started] == [1, 2]
    assert maestro_env.verify(first.execution_id) == []

    # replays of replays, still one execution: d twice (the second time c's output is that of the run before the
    # latest one: Dagster finds it through the parent runs), then everything from a
    for _ in range(2):
        assert replay(maestro_env, first.execution_id, "d").success
    assert {n: count(counters, n) for n in CHAIN} == {"a": 1, "b": 2, "c": 2, "d": 4}
    states = nodes(settings, first.execution_id)
    assert [states[n].attempt_count for n in CHAIN] == [1, 2, 2, 4]
    assert states["d"].outputs["attempts"] == 4 and states["c"].last_run_id == second.run_id
    last = replay(maestro_env, first.execution_id, "a")
    assert last.success  # a's output now says attempts 2: b's condition is false, b is skipped, its dependents run
    assert {n: count(counters, n) for n in CHAIN} == {"a": 2, "b": 2, "c": 3, "d": 5}
    states = nodes(settings, first.execution_id)
    assert (states["a"].attempt_count, states["a"].outputs["attempts"], states["b"].status.value) == (2, 2, "skipped")
    assert [r.kind.value for r in runs(settings, first.execution_id)] == ["initial"] + ["replay"] * 4
    assert maestro_env.verify(first.execution_id) == []


def test_replay_from_the_parent_of_a_failed_node(maestro_env, tmp_path):
    counters = tmp_path / "counters"
    failing = counters / "fails"
    failing.parent.mkdir(parents=True)
    failing.write_text("0")
    raw = chain_definition("replay_failed", counters)
    # c fails its first attempt (its own counter starts at 0 and succeeds on the 2nd call)
    raw["nodes"]["c"] = node("flaky", config={"counter_file": str(failing), "succeed_on_attempt": 2})
    spec = maestro_env.add_definition(raw)
    settings = maestro_env.settings
    first = maestro_env.run(spec.id)
    assert not first.success
    before = nodes(settings, first.execution_id)
    assert [before[n].status.value for n in CHAIN] == ["completed", "completed", "failed", "blocked"]
    assert execution(settings, first.execution_id).error_node_id == "c"

    second = replay(maestro_env, first.execution_id, "b")
    assert second.success
    assert (count(counters, "a"), count(counters, "b"), int(failing.read_text()), count(counters, "d")) == (1, 2, 2, 1)
    states = nodes(settings, first.execution_id)
    assert [states[n].status.value for n in CHAIN] == ["completed"] * 4
    assert [states[n].attempt_count for n in CHAIN] == [1, 2, 2, 1]
    assert states["a"].last_run_id == first.run_id
    assert {states[n].last_run_id for n in ("b", "c", "d")} == {second.run_id}
    ex = execution(settings, first.execution_id)
    assert (ex.status.value, ex.error_node_id, ex.error_message, ex.completed_nodes) == ("completed", None, None, 4)
    assert [(r.kind.value, r.status.value) for r in runs(settings, first.execution_id)] == [
        ("initial", "failed"),
        ("replay", "completed"),
    ]
    assert types_of(events(settings, first.execution_id), "d") == ["node_blocked", "node_started", "node_completed"]
    assert maestro_env.verify(first.execution_id) == []


def test_replay_from_an_unknown_node_is_refused(maestro_env, tmp_path):
    spec = maestro_env.add_definition(chain_definition("replay_unknown", tmp_path / "counters"))
    first = maestro_env.run(spec.id)
    assert first.success
    with pytest.raises(ValidationError) as caught:
        replay(maestro_env, first.execution_id, "nope")
    assert "'nope'" in caught.value.message and "a, b, c, d" in caught.value.message
    assert caught.value.details == {"node": "nope", "valid_nodes": list(CHAIN)}
    assert len(runs(maestro_env.settings, first.execution_id)) == 1
    assert execution(maestro_env.settings, first.execution_id).status.value == "completed"  # unchanged
    # a plain resume of a completed execution stays refused, and says how to replay it
    with pytest.raises(ConflictError) as refused:
        maestro_env.resume(first.execution_id)
    assert "--from" in refused.value.message
    assert maestro_env.verify(first.execution_id) == []


def test_replay_of_a_running_execution_is_a_conflict(maestro_env, tmp_path):
    from maestro_dagster.db.session import get_db
    from maestro_dagster.executions.queries import find_execution
    from maestro_dagster.states import WorkflowStatus

    spec = maestro_env.add_definition(chain_definition("replay_busy", tmp_path / "counters"))
    first = maestro_env.run(spec.id)
    with get_db(maestro_env.settings) as session:  # as while its run is active
        find_execution(session, first.execution_id).status = WorkflowStatus.RUNNING
    with pytest.raises(ConflictError) as caught:
        replay(maestro_env, first.execution_id, "b")
    assert "is running" in caught.value.message and "cancel" in caught.value.message
    assert len(runs(maestro_env.settings, first.execution_id)) == 1


def test_replay_through_the_cli(maestro_env, tmp_path):
    counters = tmp_path / "counters"
    spec = maestro_env.add_definition(chain_definition("replay_cli", counters))
    first = maestro_env.run(spec.id)
    assert first.success

    proc = maestro_cli(maestro_env, "resume", first.execution_id, "--from", "c", "--in-process")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert f"execution  {first.execution_id}" in out and "(replay, completed)" in out
    assert {n: count(counters, n) for n in CHAIN} == {"a": 1, "b": 1, "c": 2, "d": 2}
    assert [nodes(maestro_env.settings, first.execution_id)[n].attempt_count for n in CHAIN] == [1, 1, 2, 2]
    assert maestro_env.verify(first.execution_id) == []

    proc = maestro_cli(maestro_env, "resume", first.execution_id, "--from", "zz", "--in-process")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 1, out
    assert "no node 'zz'" in out and "a, b, c, d" in out and "Traceback" not in out
    assert len(runs(maestro_env.settings, first.execution_id)) == 2


def test_a_failed_replay_blocks_the_nodes_it_did_not_reach_and_resumes_from_failure(maestro_env, tmp_path):
    counters, data = tmp_path / "counters", tmp_path / "in.txt"
    data.write_text("one\ntwo\n")
    raw = chain_definition("replay_fails", counters)
    raw["nodes"]["b"] = node("inspect_file")  # reads global_context.file.path: fails once the file is gone
    spec = maestro_env.add_definition(raw)
    settings = maestro_env.settings
    first = maestro_env.run(spec.id, {"file": {"path": str(data)}})
    assert first.success
    data.unlink()

    second = replay(maestro_env, first.execution_id, "b")
    assert not second.success
    states = nodes(settings, first.execution_id)
    assert [states[n].status.value for n in CHAIN] == ["completed", "failed", "blocked", "blocked"]
    assert [states[n].last_run_id for n in CHAIN] == [first.run_id] + [second.run_id] * 3
    assert [states[n].attempt_count for n in CHAIN] == [1, 2, 1, 1]  # c and d did not run again
    ex = execution(settings, first.execution_id)
    assert (ex.status.value, ex.error_node_id, ex.completed_nodes, ex.failed_nodes) == ("failed", "b", 1, 1)
    evs = events(settings, first.execution_id)
    assert types_of(evs, "c") == ["node_started", "node_completed", "node_blocked"]
    assert maestro_env.verify(first.execution_id) == []

    data.write_text("one\n")  # fixed: a plain resume continues the replay from its failure
    third = maestro_env.resume(first.execution_id)
    assert third.success
    assert {n: count(counters, n) for n in CHAIN} == {"a": 1, "b": 0, "c": 2, "d": 2}
    states = nodes(settings, first.execution_id)
    assert [states[n].status.value for n in CHAIN] == ["completed"] * 4
    assert [states[n].attempt_count for n in CHAIN] == [1, 3, 2, 2]
    assert states["b"].outputs["lines"] == 1 and states["a"].last_run_id == first.run_id
    assert [r.kind.value for r in runs(settings, first.execution_id)] == ["initial", "replay", "resume"]
    assert maestro_env.verify(first.execution_id) == []
