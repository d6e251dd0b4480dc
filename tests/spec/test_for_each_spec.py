"""``for_each:`` is validated before activation (the condition language's rules, an upstream it reads, no ``sla``
on it, none on a handler), and its expression is evaluated with the condition evaluator's bounds: a value that is
not a list, too many items, an error or a hostile expression fails the fan-out step naming it, never the host."""

from __future__ import annotations

import pytest
from _defs import definition, echo

from maestro_dagster.compiler.conditions import evaluate_items
from maestro_dagster.errors import ExecutorError
from maestro_dagster.policy import DefinitionPolicy
from maestro_dagster.spec import validate_definition as _validate
from maestro_dagster.spec.models import MAX_FOR_EACH_ITEMS, WorkflowSpec


def validate_definition(raw):
    return _validate(raw, policy=DefinitionPolicy.allowing("maestro_examples"))


def _raw(for_each, **work):
    nodes = {"src": echo(output={"xs": [1, 2]}), "work": {**echo(), "for_each": for_each, **work}, "end": echo()}
    return definition("wf", nodes, [("src", "work"), ("work", "end")])


def _problem(raw):
    report = validate_definition(raw)
    assert not report.ok
    (problem,) = report.errors
    return problem


def test_a_valid_for_each_is_accepted_and_round_trips_through_storage():
    report = validate_definition(_raw("outputs['src']['xs']"))
    assert report.ok, report.errors
    spec = WorkflowSpec.model_validate(_raw("outputs['src']['xs']"))
    assert spec.nodes["work"].for_each == "outputs['src']['xs']"
    assert WorkflowSpec.from_storage(spec.to_storage()).nodes["work"].for_each == "outputs['src']['xs']"
    assert "for_each" not in WorkflowSpec.model_validate(_raw(None)).to_storage()["nodes"]["work"]


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("outputs['src'][", "does not parse"),
        ("[x for x in outputs['src']['xs']]", "comprehension"),
        ("outputs.__class__", "private attribute '__class__'"),
        ("open('/etc/passwd')", "open"),
    ],
)
def test_a_bad_expression_is_refused_naming_the_node(expression, says):
    problem = _problem(_raw(expression))
    assert (problem.code, problem.node_id, problem.location) == ("bad_for_each", "work", "nodes.work.for_each")
    assert problem.message.startswith("node 'work': for_each ")
    assert says in problem.message


def test_reading_a_node_that_does_not_run_before_it_is_refused():
    problem = _problem(_raw("outputs['end']['xs']"))
    assert (problem.code, problem.node_id) == ("bad_for_each", "work")
    assert "node 'end', which does not run before it" in problem.message


def test_an_sla_on_a_for_each_node_and_a_for_each_on_a_handler_are_refused():
    problem = _problem(_raw("outputs['src']['xs']", sla={"max_duration_seconds": 10}))
    assert (problem.code, problem.location) == ("bad_for_each", "nodes.work.sla")
    raw = _raw("outputs['src']['xs']")
    raw["on_failure"] = {"alert": {**echo(), "for_each": "[1, 2]"}}
    problem = _problem(raw)
    assert (problem.code, problem.node_id, problem.location) == ("bad_for_each", "alert", "on_failure.alert.for_each")


def test_a_for_each_that_is_not_a_string_is_a_schema_error():
    problem = _problem(_raw(["a", "b"]))
    assert problem.location == "nodes.work.for_each" and problem.code == "schema"


def _items(expression, outputs=None):
    return evaluate_items(expression, outputs or {"src": {"xs": [1, 2, 3]}}, {"n": 2}, max_items=MAX_FOR_EACH_ITEMS)


def test_the_expression_gives_the_items_in_order():
    assert _items("outputs['src']['xs']") == [1, 2, 3]
    assert _items("outputs['src']['xs'][:global_context['n']]") == [1, 2]
    assert _items("('a', 'b')") == ["a", "b"]


@pytest.mark.parametrize(
    ("expression", "outputs", "says"),
    [
        ("outputs['src']", None, "gave a dict, not a list"),
        ("outputs['missing']['xs']", None, "could not be evaluated (KeyError"),
        ("outputs['src']['xs']", {"src": {"xs": list(range(MAX_FOR_EACH_ITEMS + 1))}}, "1001 items, more than 1000"),
        ("['a'] * 10**9", None, "could not be evaluated"),  # bounded: never built
        ("outputs.__class__", None, "is refused"),
    ],
)
def test_a_bad_value_fails_the_fan_out_naming_it(expression, outputs, says):
    with pytest.raises(ExecutorError) as caught:
        _items(expression, outputs)
    assert says in str(caught.value)
    assert repr(expression) in str(caught.value)
