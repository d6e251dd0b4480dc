"""Retries, failures with blocked downstream nodes, and skipped nodes: mirrored exactly once and verified."""

from __future__ import annotations

from _defs import definition, node
from _mirror_support import assert_event_order, assert_node_completed, events, execution, nodes, types


def test_retry_that_succeeds_on_attempt_3(maestro_env, tmp_path):
    counter = tmp_path / "flaky.count"
    raw = definition(
        "retry_flow",
        {
            "start": node(),
            "flaky": node(
                "flaky",
                config={"succeed_on_attempt": 3, "counter_file": str(counter)},
                retry_policy={"max_attempts": 3, "retry_on_failure": True},
            ),
        },
        [("start", "flaky")],
    )
    spec = maestro_env.add_definition(raw)
    result = maestro_env.run(spec.id)
    assert result.success
    settings = maestro_env.settings

    states = nodes(settings, result.execution_id)
    assert_node_completed(states["start"])
    assert_node_completed(states["flaky"], attempts=3)
    assert states["flaky"].max_retries == 2
    assert states["flaky"].outputs == {"status": "completed", "attempts": 3}
    # completed: the earlier attempts' failures are in the node_retry events, not in the state
    assert (states["flaky"].error_message, states["flaky"].error_type) == (None, None)

    evs = events(settings, result.execution_id)
    assert_event_order(evs)
    flaky = [e for e in evs if e.node_id == "flaky"]
    assert types(evs, "flaky") == [
        "node_started", "node_retry", "node_started", "node_retry", "node_started", "node_completed",
    ]  # fmt: skip
    started = [e for e in flaky if e.event_type.value == "node_started"]
    assert [e.data["attempt"] for e in started] == [1, 2, 3]
    assert [e.data["max_attempts"] for e in started] == [3, 3, 3]
    retries = [e for e in flaky if e.event_type.value == "node_retry"]
    assert [e.data["attempt"] for e in retries] == [1, 2]
    for attempt, event in enumerate(retries, start=1):
        assert event.data["error"] == f"flaky: attempt {attempt} fails (succeeds on attempt 3)"
        assert "Dagster" not in event.data["error"] and "RetryRequested" not in event.data["error"]
    assert types(evs) == ["workflow_started", "workflow_completed"]
    ex = execution(settings, result.execution_id)
    assert (ex.status.value, ex.completed_nodes, ex.progress_percent) == ("completed", 2, 100.0)
    assert maestro_env.verify(result.execution_id) == []


FAILING = definition(
    "failing_flow",
    {
        "a": node(),
        "b": node("fail", config={"message": "b broke"}),
        "c": node(),
        "d": node(),
        "e": node(),
    },
    [("a", "b"), ("b", "d"), ("a", "c"), ("c", "e")],
)


def test_failure_blocks_downstream_while_independent_branch_completes(maestro_env):
    maestro_env.add_definition(FAILING)
    result = maestro_env.run("failing_flow")
    assert not result.success
    settings = maestro_env.settings

    states = nodes(settings, result.execution_id)
    for node_id in ("a", "c", "e"):
        assert_node_completed(states[node_id])
    b = states["b"]
    assert (b.status.value, b.attempt_count) == ("failed", 1)
    assert b.error_message == "b broke" and b.error_type == "RuntimeError"
    assert b.outputs is None and b.completed_at is not None
    d = states["d"]
    assert (d.status.value, d.attempt_count, d.started_at) == ("blocked", 0, None)

    ex = execution(settings, result.execution_id)
    assert ex.status.value == "failed"
    assert (ex.error_node_id, ex.error_message) == ("b", "b broke")
    assert (ex.total_nodes, ex.completed_nodes, ex.failed_nodes, ex.progress_percent) == (5, 3, 1, 60.0)
    assert ex.completed_at is not None

    evs = events(settings, result.execution_id)
    assert_event_order(evs)
    assert types(evs) == ["workflow_started", "workflow_failed"]
    failed = next(e for e in evs if e.event_type.value == "workflow_failed")
    assert failed.data["failed_node"] == "b" and failed.data["error"] == "b broke"
    assert types(evs, "b") == ["node_started", "node_failed"]
    node_failed = next(e for e in evs if e.event_type.value == "node_failed")
    assert node_failed.data["error"] == "b broke" and node_failed.data["error_type"] == "RuntimeError"
    assert types(evs, "d") == ["node_blocked"]
    blocked = next(e for e in evs if e.node_id == "d")
    assert blocked.dagster_storage_id == failed.dagster_storage_id and blocked.dagster_event_part >= 1
    for node_id in ("a", "c", "e"):
        assert types(evs, node_id) == ["node_started", "node_completed"]
    assert maestro_env.verify(result.execution_id) == []


SKIPPING = definition(
    "skip_flow",
    {
        "start": node(config={"output": {"needs_backend": False}}),
        "backend": node(condition="outputs['start']['needs_backend']"),
        "frontend": node(),
        "finish": node(),
    },
    [("start", "backend"), ("start", "frontend"), ("backend", "finish"), ("frontend", "finish")],
)


def test_skipped_node_does_not_block_its_dependents(maestro_env):
    maestro_env.add_definition(SKIPPING)
    result = maestro_env.run("skip_flow")
    assert result.success
    settings = maestro_env.settings

    states = nodes(settings, result.execution_id)
    skipped = states["backend"]
    # Dagster starts the step (it evaluates the condition), so it counts one attempt and a node_started.
    assert (skipped.status.value, skipped.attempt_count, skipped.outputs) == ("skipped", 1, None)
    assert skipped.completed_at is not None and skipped.inputs["upstream"] == {"start": "completed"}
    for node_id in ("start", "frontend", "finish"):
        assert_node_completed(states[node_id])
    assert states["finish"].outputs["dependencies"] == ["frontend"]
    assert states["finish"].inputs["upstream"] == {"backend": "skipped", "frontend": "completed"}

    evs = events(settings, result.execution_id)
    assert_event_order(evs)
    assert types(evs, "backend") == ["node_started", "node_skipped"]
    skip_event = next(e for e in evs if e.event_type.value == "node_skipped")
    assert skip_event.data == {"condition": SKIPPING["nodes"]["backend"]["condition"]}
    assert types(evs, "finish") == ["node_started", "node_completed"]
    assert types(evs) == ["workflow_started", "workflow_completed"]
    assert "node_blocked" not in types(evs, all_nodes=True)

    ex = execution(settings, result.execution_id)
    assert ex.status.value == "completed"
    assert (ex.total_nodes, ex.completed_nodes, ex.failed_nodes, ex.progress_percent) == (4, 3, 0, 75.0)
    assert "backend" not in ex.final_context["outputs"]
    assert maestro_env.verify(result.execution_id) == []
