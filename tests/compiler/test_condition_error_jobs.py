"""``defaults.on_condition_error`` and the condition deadline through real Dagster jobs, run in process."""

from __future__ import annotations

from typing import Any

import pytest
from _defs import chain, definition
from dagster import DagsterEventType, DagsterInstance, ExecuteInProcessResult

from maestro_dagster.compiler import OUTPUT_NAME, build_job
from maestro_dagster.names import dagster_name
from maestro_dagster.policy import DefinitionPolicy, ExecutorPolicy
from maestro_dagster.spec import parse_definition
from maestro_dagster.tags import META_STATUS

BROKEN = "outputs['a']['no_such_key'] == 1"  # the key is missing at run time: evaluation fails with KeyError


def with_rule(rule: str | None, condition: str = BROKEN, **node: Any) -> dict[str, Any]:
    """``a -> b -> c``; ``b``'s condition fails to evaluate under ``defaults.on_condition_error`` = ``rule``."""
    nodes = {
        "a": {"executor": "noop", "config": {"output": {"ok": True}}},
        "b": {"executor": "noop", "condition": condition, **node},
        "c": {"executor": "noop"},
    }
    rules = {} if rule is None else {"defaults": {"on_condition_error": rule}}
    return definition(f"on_error_{rule or 'default'}", nodes, chain("a", "b", "c"), **rules)


def run(raw: dict[str, Any], instance: DagsterInstance) -> ExecuteInProcessResult:
    spec = parse_definition(raw, policy=DefinitionPolicy.allowing())
    job = build_job(spec, executors=ExecutorPolicy.allowing())
    return job.execute_in_process(run_config={"initial_context": {}}, instance=instance, raise_on_error=False)


def status_of(result: ExecuteInProcessResult, node_id: str) -> str:
    for event in result.events_for_node(dagster_name(node_id)):
        if event.event_type == DagsterEventType.STEP_OUTPUT:
            return event.step_output_data.metadata[META_STATUS].value
    return "no output"


def warnings_of(result: ExecuteInProcessResult, instance: DagsterInstance, node_id: str) -> list[str]:
    return [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.step_key == dagster_name(node_id) and "could not be evaluated" in entry.user_message
    ]


@pytest.mark.parametrize("rule", [None, "run"])
def test_run_is_the_default_the_node_runs_with_a_warning(rule: str | None, instance: DagsterInstance) -> None:
    result = run(with_rule(rule), instance)
    assert result.success
    assert status_of(result, "b") == "completed" and status_of(result, "c") == "completed"
    [warning] = warnings_of(result, instance, "b")
    assert "KeyError" in warning and "running the node" in warning


def test_skip_skips_the_node_like_a_false_condition(instance: DagsterInstance) -> None:
    result = run(with_rule("skip"), instance)
    assert result.success
    assert status_of(result, "b") == "skipped"
    assert result.output_for_node(dagster_name("b"), OUTPUT_NAME).status == "skipped"
    assert status_of(result, "c") == "completed"  # a skipped node does not block its dependents
    [warning] = warnings_of(result, instance, "b")
    assert "skipping the node" in warning


def test_fail_fails_the_node_naming_the_condition_and_the_error(instance: DagsterInstance) -> None:
    result = run(with_rule("fail"), instance)
    assert not result.success
    data = result.failure_data_for_node(dagster_name("b"))
    assert data is not None
    text = data.error.to_string()
    assert "ExecutorError" in text and BROKEN in text and "KeyError" in text and "on_condition_error" in text
    assert status_of(result, "a") == "completed" and status_of(result, "c") == "no output"


def test_fail_does_not_touch_conditions_that_evaluate(instance: DagsterInstance) -> None:
    result = run(with_rule("fail", condition="outputs['a']['ok'] == False"), instance)
    assert result.success and status_of(result, "b") == "skipped" and status_of(result, "c") == "completed"


def test_a_condition_past_the_node_timeout_fails_the_node_whatever_the_rule(instance: DagsterInstance) -> None:
    result = run(with_rule("run", condition="outputs['a']['ok']", timeout_seconds=1e-6), instance)
    assert not result.success
    data = result.failure_data_for_node(dagster_name("b"))
    assert data is not None
    text = data.error.to_string()
    assert "NodeTimeoutError" in text and "timeout" in text
