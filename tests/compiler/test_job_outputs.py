"""How outputs flow between compiled nodes, and how conditions skip nodes without blocking their dependents."""

from __future__ import annotations

from _compiler_support import reconstructable_job, result_of, run, step_events
from _defs import chain, definition, echo
from dagster import DagsterEventType, execute_job

from maestro_dagster.tags import META_STATUS


def _echo_output(node_id: str, dependencies: list[str], context: dict, **extra) -> dict:
    """What ``maestro_examples.nodes:echo`` returns for a node with no config."""
    return {"node_id": node_id, "config": {}, "dependencies": dependencies, "global_context": context, **extra}


def test_linear_chain_passes_direct_outputs_and_every_ancestor(instance):
    raw = definition("chain", {"a": echo(), "b": echo(), "c": echo(), "d": echo()}, chain("a", "b", "c", "d"))
    context = {"requirement": "x", "nested": {"n": [1, 2]}}
    result = run(raw, instance, context)
    assert result.success

    expected = {
        "a": _echo_output("a", [], context),
        "b": _echo_output("b", ["a"], context),
        "c": _echo_output("c", ["b"], context),
        "d": _echo_output("d", ["c"], context),
    }
    for position, node_id in enumerate("abcd"):
        node = result_of(result, node_id)
        assert node.status == "completed"
        assert node.output == expected[node_id]
        # dependency_outputs held only the direct upstream; all_outputs every ancestor plus the node itself
        assert node.all_outputs == {n: expected[n] for n in "abcd"[: position + 1]}
        assert node.all_artifacts == {n: [] for n in "abcd"[: position + 1]}
        assert node.output["global_context"] == context


def test_diamond_joins_both_branches(instance):
    raw = definition(
        "diamond",
        {"top": echo(), "left": echo(), "right": echo(), "bottom": echo()},
        [("top", "left"), ("top", "right"), ("left", "bottom"), ("right", "bottom")],
    )
    result = run(raw, instance, {"k": 1})
    assert result.success
    bottom = result_of(result, "bottom")
    assert bottom.output["dependencies"] == ["left", "right"]
    assert set(bottom.all_outputs) == {"top", "left", "right", "bottom"}
    assert bottom.all_outputs["top"] == _echo_output("top", [], {"k": 1})
    assert result_of(result, "left").output["dependencies"] == ["top"]
    assert set(result_of(result, "left").all_outputs) == {"top", "left"}


def test_fan_out_fan_in(instance):
    branches = [f"branch_{i}" for i in range(5)]
    nodes = {"start": echo(), **{b: echo(output={"index": i}) for i, b in enumerate(branches)}, "join": echo()}
    edges = [("start", b) for b in branches] + [(b, "join") for b in branches]
    result = run(definition("fan", nodes, edges), instance)
    assert result.success
    join = result_of(result, "join")
    assert join.output["dependencies"] == branches
    assert set(join.all_outputs) == {"start", "join", *branches}
    assert [join.all_outputs[b]["index"] for b in branches] == [0, 1, 2, 3, 4]
    assert join.output["global_context"] == {}


def test_false_condition_skips_the_node_and_does_not_block_its_dependent(instance):
    raw = definition(
        "skip",
        {
            "decide": echo(output={"needs_backend": False}),
            "backend": {**echo(), "condition": "outputs['decide']['needs_backend']"},
            "deploy": echo(),
        },
        [("decide", "backend"), ("backend", "deploy"), ("decide", "deploy")],
    )
    result = run(raw, instance, {"env": "prod"})
    assert result.success

    backend = result_of(result, "backend")
    assert backend.status == "skipped"
    assert backend.output is None
    assert set(backend.all_outputs) == {"decide"}

    deploy = result_of(result, "deploy")
    assert deploy.status == "completed"
    # the skipped node is absent from dependency_outputs and from all_outputs (original semantics)
    assert deploy.output["dependencies"] == ["decide"]
    assert set(deploy.all_outputs) == {"decide", "deploy"}

    skipped_events = [e for e in result.events_for_node("backend") if e.event_type == DagsterEventType.STEP_OUTPUT]
    assert skipped_events[0].step_output_data.metadata[META_STATUS].value == "skipped"
    assert "backend" in step_events(instance, result.run_id, DagsterEventType.STEP_SUCCESS)


def test_condition_over_global_context_true_runs_the_node(instance):
    raw = definition("gc", {"only_prod": {**echo(), "condition": "global_context.get('env') == 'prod'"}})
    assert result_of(run(raw, instance, {"env": "prod"}), "only_prod").status == "completed"
    assert result_of(run(raw, instance, {"env": "dev"}), "only_prod").status == "skipped"


def test_condition_that_errors_at_runtime_counts_as_true(instance):
    raw = definition(
        "cond_error",
        {"a": echo(), "b": {**echo(), "condition": "outputs['a']['no_such_key'] == 1"}},
        [("a", "b")],
    )
    result = run(raw, instance)
    assert result.success
    assert result_of(result, "b").status == "completed"
    assert result_of(result, "b").output["dependencies"] == ["a"]
    warnings = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.step_key == "b" and "could not be evaluated" in entry.user_message
    ]
    assert len(warnings) == 1
    assert "KeyError" in warnings[0]


def test_a_skipped_node_upstream_of_a_condition_reading_it_runs_the_reader(instance):
    # reading the output of a skipped node raises inside the evaluator: the reader runs (original's rule)
    raw = definition(
        "skip_chain",
        {
            "gate": {**echo(), "condition": "False"},
            "reader": {**echo(), "condition": "outputs['gate']['x'] == 1"},
        },
        [("gate", "reader")],
    )
    result = run(raw, instance)
    assert result_of(result, "gate").status == "skipped"
    assert result_of(result, "reader").status == "completed"
    assert result_of(result, "reader").output["dependencies"] == []


def test_multiprocess_run_passes_outputs_between_processes(disk_instance):
    raw = definition(
        "mp_outputs",
        {"a": echo(output={"n": 1}), "b": {"executor": "maestro_examples.nodes:async_echo"}, "c": echo()},
        [("a", "b"), ("a", "c"), ("b", "c")],
    )
    with execute_job(
        reconstructable_job(raw), instance=disk_instance, run_config={"initial_context": {"who": "mp"}}
    ) as result:
        assert result.success
        c = result.output_for_node("c")
        assert c.output["dependencies"] == ["a", "b"]
        assert c.all_outputs["b"]["async"] is True
        assert c.all_outputs["a"]["n"] == 1
        assert c.output["global_context"] == {"who": "mp"}
        pids = {e.pid for e in result.all_events if e.event_type == DagsterEventType.STEP_START}
        assert len(pids) == 3  # each step in its own process
