"""The ``sla:`` block is validated before activation: bad limits and unknown ``on_miss`` values are refused with
a problem naming the node and the fix; a valid one round-trips, and a definition without one keeps its hash."""

from __future__ import annotations

import pytest
from _defs import definition, echo

from maestro_dagster.policy import DefinitionPolicy
from maestro_dagster.spec import validate_definition as _validate
from maestro_dagster.spec.sla import MAX_SLA_SECONDS


def validate_definition(raw):
    return _validate(raw, policy=DefinitionPolicy.allowing("maestro_examples"))


def _problems(raw):
    report = validate_definition(raw)
    assert not report.ok
    return report.errors


@pytest.mark.parametrize("limit", [0, -5, MAX_SLA_SECONDS + 1, "soon"])
def test_a_bad_node_limit_names_the_node_and_the_fix(limit):
    raw = definition("wf", {"slow": {**echo(), "sla": {"max_duration_seconds": limit}}})
    (problem,) = _problems(raw)
    assert problem.node_id == "slow"
    assert problem.location == "nodes.slow.sla.max_duration_seconds"
    assert "slow" in str(problem) and "max_duration_seconds" in problem.message
    if not isinstance(limit, str):
        assert "e.g. 300" in problem.message and str(MAX_SLA_SECONDS) in problem.message


def test_a_bad_on_miss_and_an_unknown_field_are_refused():
    raw = definition(
        "wf",
        {"a": {**echo(), "sla": {"max_duration_seconds": 5, "on_miss": "page"}}},
        sla={"max_duration_seconds": 10, "deadline": 3},
    )
    problems = {p.location: p for p in _problems(raw)}
    assert "'warn'" in problems["nodes.a.sla.on_miss"].message and "'fail'" in problems["nodes.a.sla.on_miss"].message
    assert problems["nodes.a.sla.on_miss"].node_id == "a"
    assert "unknown field 'deadline'" in problems["sla.deadline"].message


def test_a_missing_limit_is_refused_at_the_workflow_level():
    (problem,) = _problems(definition("wf", {"a": echo()}, sla={"on_miss": "fail"}))
    assert problem.location == "sla.max_duration_seconds" and "missing" in problem.message


def test_a_valid_sla_round_trips_and_none_keeps_the_hash():
    plain = validate_definition(definition("wf", {"a": echo()})).raise_if_invalid()
    assert "sla" not in plain.to_storage() and "sla" not in plain.to_storage()["nodes"]["a"]
    raw = definition("wf", {"a": {**echo(), "sla": {"max_duration_seconds": 2.5}}}, sla={"max_duration_seconds": 60})
    spec = validate_definition(raw).raise_if_invalid()
    assert spec.nodes["a"].sla.on_miss == "warn" and spec.sla.max_duration_seconds == 60
    stored = spec.to_storage()
    assert stored["sla"] == {"max_duration_seconds": 60, "on_miss": "warn"}
    assert type(spec).from_storage(stored) == spec
    assert spec.content_hash() != plain.content_hash()
