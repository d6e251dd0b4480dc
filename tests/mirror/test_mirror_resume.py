"""Resume = Dagster re-execution from failure, mirrored into the same execution."""

from __future__ import annotations

import pytest
from _defs import definition, node
from _mirror_support import assert_event_order, assert_node_completed, events, execution, nodes, runs
from _mirror_support import types as types_of

from maestro_dagster.errors import ConflictError


def test_resume_from_failure_continues_the_same_execution(maestro_env, tmp_path):
    raw = definition(
        "resume_flow",
        {
            "a": node(),
            "flaky": node("flaky", config={"succeed_on_attempt": 2, "counter_file": str(tmp_path / "count")}),
            "side": node(),
            "after": node(),
        },
        [("a", "flaky"), ("a", "side"), ("flaky", "after")],
    )
    spec = maestro_env.add_definition(raw)
    settings = maestro_env.settings

    first = maestro_env.run(spec.id, {"requirement": "resume me"})
    assert not first.success
    ex = execution(settings, first.execution_id)
    assert (ex.status.value, ex.error_node_id, ex.failed_nodes) == ("failed", "flaky", 1)
    before = nodes(settings, first.execution_id)
    assert (before["flaky"].status.value, before["after"].status.value) == ("failed", "blocked")
    first_completed_at = ex.completed_at

    second = maestro_env.resume(first.execution_id)
    assert second.success
    assert second.execution_id == first.execution_id and second.run_id != first.run_id

    ex = execution(settings, first.execution_id)
    assert ex.status.value == "completed"
    assert (ex.total_nodes, ex.completed_nodes, ex.failed_nodes, ex.progress_percent) == (4, 4, 0, 100.0)
    assert ex.error_node_id is None and ex.error_message is None
    assert ex.completed_at > first_completed_at and ex.started_at <= first_completed_at
    assert ex.initial_context == {"requirement": "resume me"}

    initial, resume = runs(settings, first.execution_id)
    assert (initial.run_id, initial.kind.value, initial.status.value) == (first.run_id, "initial", "failed")
    assert (initial.parent_run_id, initial.root_run_id) == (None, first.run_id)
    assert (resume.run_id, resume.kind.value, resume.status.value) == (second.run_id, "resume", "completed")
    assert (resume.parent_run_id, resume.root_run_id) == (first.run_id, first.run_id)
    assert resume.trigger == "resume" and initial.trigger == "cli"
    assert initial.mirror_complete and resume.mirror_complete

    states = nodes(settings, first.execution_id)
    assert_node_completed(states["flaky"], attempts=2)  # one attempt per run, accumulated
    assert states["flaky"].outputs == {"status": "completed", "attempts": 2}
    assert states["flaky"].last_run_id == second.run_id
    for node_id in ("a", "side"):  # completed in the first run: not run again
        assert_node_completed(states[node_id])
        assert states[node_id].last_run_id == first.run_id
    assert_node_completed(states["after"])  # was blocked; ran in the resume
    assert states["after"].last_run_id == second.run_id

    evs = events(settings, first.execution_id)
    assert_event_order(evs)
    first_ids = [e.id for e in evs if e.dagster_run_id == first.run_id]
    second_ids = [e.id for e in evs if e.dagster_run_id == second.run_id]
    assert first_ids and second_ids and max(first_ids) < min(second_ids)  # one timeline, run by run
    assert types_of(evs) == ["workflow_started", "workflow_failed", "workflow_resumed", "workflow_completed"]
    resumed = next(e for e in evs if e.event_type.value == "workflow_resumed")
    assert resumed.dagster_run_id == second.run_id
    assert resumed.data["parent_run_id"] == first.run_id and resumed.data["kind"] == "resume"
    for node_id in ("a", "side"):
        assert types_of(evs, node_id) == ["node_started", "node_completed"]
        assert {e.dagster_run_id for e in evs if e.node_id == node_id} == {first.run_id}
    assert types_of(evs, "flaky") == ["node_started", "node_failed", "node_started", "node_completed"]
    flaky_started = [e for e in evs if e.node_id == "flaky" and e.event_type.value == "node_started"]
    assert [e.data["total_attempts"] for e in flaky_started] == [1, 2]
    assert types_of(evs, "after") == ["node_blocked", "node_started", "node_completed"]
    assert maestro_env.verify(first.execution_id) == []


def test_resume_of_a_completed_execution_is_refused(maestro_env):
    spec = maestro_env.add_definition(definition("resume_done", {"a": node()}, []))
    result = maestro_env.run(spec.id)
    assert result.success
    with pytest.raises(ConflictError):
        maestro_env.resume(result.execution_id)
    assert len(runs(maestro_env.settings, result.execution_id)) == 1
    assert maestro_env.verify(result.execution_id) == []
