"""Typed inputs (issue 17, point 1): the declarations' validation before activation (every bad form, each named
``inputs.<name>...`` with its fix), the contexts of schedules and sensors checked against them, the one rule
``apply_inputs`` (each bad input named, defaults filled in, extra keys kept), the stored form (a definition
without inputs keeps its content hash) and the JSON Schema."""

from __future__ import annotations

import json

import pytest

from maestro_dagster.errors import ValidationError
from maestro_dagster.policy import DefinitionPolicy
from maestro_dagster.spec.inputs import MAX_INPUTS, InputError, InputSpec, apply_inputs
from maestro_dagster.spec.models import WorkflowSpec
from maestro_dagster.spec.schema import render_schema
from maestro_dagster.spec.validate import validate_definition

POLICY = DefinitionPolicy.allowing()


def definition(inputs, **extra) -> dict:
    return {"id": "typed", "nodes": {"a": {"executor": "noop"}}, "inputs": inputs, **extra}


def problems(raw: dict) -> dict[str, tuple[str, str]]:
    report = validate_definition(raw, policy=POLICY)
    assert not report.ok
    return {p.location: (p.code, p.message) for p in report.errors}


GOOD = {
    "region": {"type": "string", "required": True, "description": "where to run"},
    "size": {"type": "string", "enum": ["small", "large"], "default": "small"},
    "rows": {"type": "integer", "default": 10},
    "ratio": {"type": "number", "default": 0.5},
    "dry_run": {"type": "boolean", "default": False},
    "options": {"type": "object", "default": {"k": 1}},
    "files": {"type": "array", "default": ["a.csv"]},
    "note": {"type": "string"},
}


def test_a_good_declaration_is_valid_and_stored_without_unset_parts():
    report = validate_definition(definition(GOOD), policy=POLICY)
    assert report.ok, report.summary()
    stored = report.spec.to_storage()["inputs"]
    assert stored["note"] == {"type": "string"}
    assert stored["region"] == {"type": "string", "required": True, "description": "where to run"}
    assert stored["dry_run"] == {"type": "boolean", "default": False}
    assert WorkflowSpec.from_storage(report.spec.to_storage()) == report.spec


def test_no_inputs_keeps_the_stored_form_and_hash():
    raw = {"id": "plain", "nodes": {"a": {}}}
    spec = validate_definition(raw, policy=POLICY).spec
    assert "inputs" not in spec.to_storage()
    assert spec.content_hash() == validate_definition({**raw, "inputs": {}}, policy=POLICY).spec.content_hash()


@pytest.mark.parametrize(
    ("inputs", "location", "words"),
    [
        ({"x": {"type": "str"}}, "inputs.x.type", "write one of string, integer, number, boolean, object, array"),
        ({"x": {}}, "inputs.x.type", "type is missing"),
        ({"x": {"type": "integer", "default": "3"}}, "inputs.x.default", "must be of type integer (got string"),
        ({"x": {"type": "integer", "default": True}}, "inputs.x.default", "must be of type integer (got boolean"),
        ({"x": {"type": "integer", "default": 2.0}}, "inputs.x.default", "must be of type integer (got number"),
        ({"x": {"type": "number", "default": False}}, "inputs.x.default", "must be of type number"),
        ({"x": {"type": "array", "default": {"a": 1}}}, "inputs.x.default", "must be of type array (got object"),
        ({"x": {"type": "string", "enum": ["a", "b"], "default": "c"}}, "inputs.x.default", "use one of 'a', 'b'"),
        (
            {"x": {"type": "string", "required": True, "default": "a"}},
            "inputs.x.default",
            "remove 'required: true' or remove the default",
        ),
        ({"bad-name": {"type": "string"}}, "inputs.bad-name", "letters, digits and '_'"),
        ({"1st": {"type": "string"}}, "inputs.1st", "not starting with a digit"),
        ({"x": {"type": "string", "requird": True}}, "inputs.x.requird", "unknown field 'requird'"),
        ({"x": {"type": "string", "required": "yes"}}, "inputs.x.required", "true or false"),
        ({"x": {"type": "string", "description": 3}}, "inputs.x.description", "must be text"),
        ({"x": {"type": "string", "enum": []}}, "inputs.x.enum", "non-empty list"),
        ({"x": {"type": "object", "enum": [{}]}}, "inputs.x.enum", "only for string, integer, number, boolean"),
        ({"x": {"type": "integer", "enum": [1, "2"]}}, "inputs.x.enum[1]", "is not of type integer"),
        ({"x": {"type": "integer", "enum": [1, 1]}}, "inputs.x.enum[1]", "listed twice"),
        ({"x": "string"}, "inputs.x", "must be a mapping such as {type: string}"),
    ],
)
def test_each_bad_form_names_the_input_and_the_fix(inputs, location, words):
    found = problems(definition(inputs))
    assert location in found, found
    code, message = found[location]
    assert code == "bad_input" and words in message, message


def test_every_bad_input_is_reported_at_once_without_pydantic_noise():
    found = problems(definition({"a": {"type": "str"}, "b": {"type": "integer", "default": "x"}, "ok": GOOD["rows"]}))
    assert set(found) == {"inputs.a.type", "inputs.b.default"}


def test_inputs_must_be_a_mapping():
    found = problems(definition(["region"]))
    assert found["inputs"][0] == "bad_input" and "mapping of input name" in found["inputs"][1]


def test_too_many_inputs_is_refused_first():
    many = {f"i{n}": {"type": "string"} for n in range(MAX_INPUTS + 1)}
    report = validate_definition(definition(many), policy=POLICY)
    assert [(p.location, p.code) for p in report.errors] == [("inputs", "too_large")]
    assert f"limit of {MAX_INPUTS}" in report.errors[0].message and "type object" in report.errors[0].message
    assert validate_definition(definition(dict(list(many.items())[:MAX_INPUTS])), policy=POLICY).ok


def test_schedule_contexts_must_satisfy_the_inputs():
    raw = definition(
        {"region": GOOD["region"], "size": GOOD["size"]},
        schedules=[
            {"cron": "0 2 * * *", "initial_context": {"region": "eu"}},
            {"cron": "0 3 * * *"},
            {"cron": "0 4 * * *", "initial_context": {"region": 7, "size": "huge"}},
        ],
    )
    found = problems(raw)
    assert set(found) == {
        "schedules[1].initial_context.region",
        "schedules[2].initial_context.region",
        "schedules[2].initial_context.size",
    }
    assert found["schedules[1].initial_context.region"][0] == "bad_trigger_context"
    assert "required input 'region'" in found["schedules[1].initial_context.region"][1]
    assert "must be of type string (got integer 7)" in found["schedules[2].initial_context.region"][1]
    assert "use one of 'small', 'large'" in found["schedules[2].initial_context.size"][1]


def test_sensor_contexts_are_typed_but_may_leave_required_inputs_to_the_event():
    sensors = [{"type": "request_queue"}, {"type": "request_queue", "name": "q2", "initial_context": {"rows": "x"}}]
    found = problems(definition({"region": GOOD["region"], "rows": GOOD["rows"]}, sensors=sensors))
    assert set(found) == {"sensors[1].initial_context.rows"}
    assert found["sensors[1].initial_context.rows"][0] == "bad_trigger_context"


INPUTS = {name: InputSpec.model_validate(value) for name, value in GOOD.items()}


def test_apply_inputs_fills_defaults_and_keeps_extra_keys():
    context = apply_inputs(INPUTS, {"region": "eu", "free": {"any": 1}, "rows": 3})
    assert context == {"region": "eu", "free": {"any": 1}, "rows": 3, "size": "small", "ratio": 0.5,
                       "dry_run": False, "options": {"k": 1}, "files": ["a.csv"]}  # fmt: skip
    context["options"]["k"] = 2  # a copy: the definition's default is unchanged
    assert INPUTS["options"].default == {"k": 1}
    assert apply_inputs(INPUTS, {"region": "eu", "ratio": 2})["ratio"] == 2  # an integer is a number


def test_apply_inputs_names_each_bad_input():
    with pytest.raises(InputError) as caught:
        apply_inputs(INPUTS, {"rows": "ten", "size": "huge", "dry_run": 1, "files": None}, workflow_id="typed")
    error = caught.value
    assert isinstance(error, ValidationError) and error.http_status == 422 and error.exit_code == 1
    assert error.code == "invalid_inputs"
    by_input = {e["input"]: e for e in error.details["errors"]}
    assert set(by_input) == {"region", "rows", "size", "dry_run", "files"}
    assert by_input["region"]["code"] == "missing_input" and "where to run" in by_input["region"]["message"]
    assert by_input["rows"]["code"] == "wrong_type" and by_input["size"]["code"] == "not_in_enum"
    assert "got null" in by_input["files"]["message"]
    assert all(e["location"] == f"initial_context.{e['input']}" for e in error.details["errors"])
    for name in by_input:
        assert repr(name) in error.message
    json.dumps(error.to_dict())


def test_true_is_not_one():
    flags = {"n": InputSpec(type="integer", enum=[1, 2])}
    with pytest.raises(InputError):
        apply_inputs(flags, {"n": True})
    assert apply_inputs(flags, {"n": 1}) == {"n": 1}


def test_the_json_schema_covers_inputs():
    schema = json.loads(render_schema())
    prop = schema["properties"]["inputs"]
    assert list(prop["patternProperties"]) == ["^[A-Za-z_][A-Za-z0-9_]{0,63}$"]
    assert prop["additionalProperties"] is False
    input_def = schema["$defs"]["InputSpec"]
    assert input_def["additionalProperties"] is False
    assert set(input_def["properties"]) == {"type", "required", "default", "description", "enum"}
    assert input_def["properties"]["type"]["enum"] == ["string", "integer", "number", "boolean", "object", "array"]
