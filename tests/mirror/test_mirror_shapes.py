"""Successful runs of common shapes (linear, diamond, fan-out), mirrored through Dagster and verified."""

from __future__ import annotations

import pytest
from _defs import definition, fan_out, linear, node
from _mirror_support import assert_event_order, assert_node_completed, events, execution, nodes, runs, types

DIAMOND = definition(
    "shape_diamond",
    {"a": node(), "b": node(), "c": node(), "d": node()},
    [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")],
)
SHAPES = {
    "linear": (linear("shape_linear", 5), {"n1": [], "n2": ["n1"], "n3": ["n2"], "n4": ["n3"], "n5": ["n4"]}),
    "diamond": (DIAMOND, {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}),
    "fan_out": (
        fan_out("shape_fan_out", 8),
        {"src": [], **{f"m{i}": ["src"] for i in range(1, 9)}, "sink": [f"m{i}" for i in range(1, 9)]},
    ),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_successful_run_is_mirrored(maestro_env, shape):
    raw, upstream = SHAPES[shape]
    spec = maestro_env.add_definition(raw)
    ctx = {"requirement": "build it", "shape": shape}
    result = maestro_env.run(spec.id, ctx)
    assert result.success
    settings = maestro_env.settings

    states = nodes(settings, result.execution_id)
    assert set(states) == set(raw["nodes"])
    for node_id, state in states.items():
        assert_node_completed(state)
        assert state.last_run_id == result.run_id
        assert state.outputs == {
            "node_id": node_id,
            "config": {},
            "dependencies": upstream[node_id],
            "global_context": ctx,
        }
        assert state.inputs["upstream"] == {up: "completed" for up in upstream[node_id]}
        assert state.inputs["global_context_keys"] == sorted(ctx)

    ex = execution(settings, result.execution_id)
    assert ex.status.value == "completed"
    assert (ex.total_nodes, ex.completed_nodes, ex.failed_nodes) == (len(raw["nodes"]), len(raw["nodes"]), 0)
    assert ex.progress_percent == 100.0
    assert ex.started_at is not None and ex.completed_at >= ex.started_at
    assert ex.error_message is None and ex.error_node_id is None
    assert ex.initial_context == ctx
    assert ex.final_context["outputs"] == {n: s.outputs for n, s in states.items()}

    (run_row,) = runs(settings, result.execution_id)
    assert (run_row.run_id, run_row.kind.value, run_row.status.value) == (result.run_id, "initial", "completed")
    assert run_row.dagster_status == "SUCCESS" and run_row.mirror_complete
    assert run_row.parent_run_id is None and run_row.root_run_id == result.run_id

    evs = events(settings, result.execution_id)
    assert_event_order(evs)
    assert types(evs) == ["workflow_started", "workflow_completed"]
    assert evs[0].event_type.value == "workflow_started" and evs[-1].event_type.value == "workflow_completed"
    assert evs[0].data["initial_context"] == ctx
    for node_id in raw["nodes"]:
        assert types(evs, node_id) == ["node_started", "node_completed"]
        started, completed = (e for e in evs if e.node_id == node_id)
        assert started.data["attempt"] == 1 and completed.data["output"] == states[node_id].outputs
        for up in upstream[node_id]:  # a node starts only after its upstream completed
            up_completed = next(e for e in evs if e.node_id == up and e.event_type.value == "node_completed")
            assert up_completed.id < started.id
    assert {e.dagster_run_id for e in evs} == {result.run_id}
    assert all(e.dagster_storage_id is not None for e in evs)
    assert maestro_env.verify(result.execution_id) == []
