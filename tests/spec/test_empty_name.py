"""A workflow whose ``name`` is written empty is refused by ``validate_definition``; an absent name is the id."""

from __future__ import annotations

import pytest

from maestro_dagster.policy import DefinitionPolicy
from maestro_dagster.spec.validate import validate_definition


def _report(**fields):
    raw = {"id": "named", "nodes": {"a": {}}, "edges": [], **fields}
    return validate_definition(raw, policy=DefinitionPolicy(), check_imports=False)


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_an_empty_name_is_refused_naming_the_field_and_the_fix(name):
    report = _report(name=name)
    assert report.spec is None
    [problem] = report.errors
    assert (problem.location, problem.code) == ("name", "schema")
    assert "workflow name is empty" in problem.message
    assert "remove 'name' to use the workflow id" in problem.message


def test_an_absent_or_null_name_defaults_to_the_id():
    for report in (_report(), _report(name=None)):
        assert report.errors == []
        assert report.spec.name == "named"


def test_a_real_name_is_kept():
    report = _report(name="  Nightly build ")
    assert report.errors == []
    assert report.spec.name == "  Nightly build "
