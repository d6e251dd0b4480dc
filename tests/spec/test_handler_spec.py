"""The ``on_failure:`` / ``finally:`` maps are validated before activation: an id used twice across the three maps,
an edge or ``dependencies`` naming a handler, an unknown or refused executor are refused with a problem naming the
node and the fix; a valid definition round-trips through storage, and one without handlers keeps its hash."""

from __future__ import annotations

from _defs import chain, definition, echo

from maestro_dagster.policy import DefinitionPolicy
from maestro_dagster.spec import validate_definition as _validate
from maestro_dagster.spec.models import WorkflowSpec


def validate_definition(raw):
    return _validate(raw, policy=DefinitionPolicy.allowing("maestro_examples"))


def _raw(**fields):
    return definition("wf", {"a": echo(), "b": echo()}, chain("a", "b"), **fields)


def _problems(raw):
    report = validate_definition(raw)
    assert not report.ok
    return report.errors


def test_an_id_in_two_maps_is_refused_naming_both():
    (problem,) = _problems(_raw(on_failure={"alert": echo()}, **{"finally": {"a": echo()}}))
    assert (problem.code, problem.node_id, problem.location) == ("duplicate_id", "a", "finally.a")
    assert "'nodes' and 'finally'" in problem.message and "rename" in problem.message


def test_an_edge_to_a_handler_is_refused_once_with_the_fix():
    raw = _raw(on_failure={"alert": echo()})
    raw["edges"].append({"source": "b", "target": "alert"})
    (problem,) = _problems(raw)
    assert (problem.code, problem.node_id, problem.location) == ("handler_edge", "alert", "edges[1].target")
    assert "on_failure node 'alert'" in problem.message and "remove the edge" in problem.message


def test_dependencies_on_a_handler_are_refused():
    (problem,) = _problems(_raw(**{"finally": {"cleanup": {**echo(), "dependencies": ["b"]}}}))
    assert (problem.code, problem.location) == ("handler_edge", "finally.cleanup.dependencies")


def test_an_unknown_or_refused_executor_names_the_handler():
    problems = _problems(_raw(on_failure={"alert": {"executor": "nope_pkg.mod:fn"}}))
    assert [(p.code, p.node_id, p.location) for p in problems] == [
        ("executor_not_allowed", "alert", "on_failure.alert.executor")
    ]
    problems = _problems(_raw(on_failure={"alert": {"executor": "maestro_examples.nodes:missing"}}))
    assert [(p.code, p.location) for p in problems] == [("unknown_executor", "on_failure.alert.executor")]


def test_a_handler_map_that_is_not_a_mapping_is_refused():
    problems = _problems(_raw(on_failure=["alert"]))
    assert any(p.location == "on_failure" and "mapping" in p.message for p in problems)


def test_a_valid_definition_round_trips_and_old_ones_keep_their_hash():
    report = validate_definition(_raw(on_failure={"alert": echo()}, **{"finally": {"cleanup": echo()}}))
    assert report.ok, report.summary()
    spec = report.spec
    stored = spec.to_storage()
    assert set(stored["on_failure"]) == {"alert"} and set(stored["finally"]) == {"cleanup"}
    assert WorkflowSpec.from_storage(stored) == spec
    assert spec.handlers["alert"][0] == "on_failure" and spec.handlers["cleanup"][0] == "finally"
    plain = validate_definition(_raw()).spec
    assert "on_failure" not in plain.to_storage() and "finally" not in plain.to_storage()
