"""Typed inputs of a workflow (``inputs:``): the ``InputSpec`` model and the one rule every launch applies.

A definition may declare ``inputs: {name: {type, required, default, description, enum}}``. This module owns
what a value of each type is (:func:`value_problem`), and :func:`apply_inputs`, which every path that starts
an execution with an initial context calls (the API's execute, ``maestro run``, schedules, sensors and the
Dagster job's run config mapping): a required input missing, a value of the wrong type or outside its enum
raises :class:`InputError` naming *each* bad input (HTTP 422, CLI exit 1); otherwise the declared defaults are
filled in and the context is returned. Keys the inputs do not declare are kept: like the original Maestro, the
context stays free-form, and ``inputs`` only types the keys it names.

The rules, written once here: ``integer`` is a whole number (not a boolean, not ``3.0``), ``number`` any
finite number but a boolean, ``object`` a mapping, ``array`` a list; ``null`` is no value of any type (omit
the key instead). An input with a ``default`` is optional: ``required: true`` with a default is refused (as
Airflow Params and Dagster config allow a default on an optional field only). ``enum`` lists the allowed
values of a string, integer, number or boolean input. The checks of the declarations themselves (run before
activation, as ``SpecProblem``) are in :mod:`.input_checks`.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from maestro_dagster.errors import ValidationError

InputType = Literal["string", "integer", "number", "boolean", "object", "array"]
INPUT_TYPES: tuple[str, ...] = ("string", "integer", "number", "boolean", "object", "array")
ENUM_TYPES: tuple[str, ...] = ("string", "integer", "number", "boolean")
INPUT_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
INPUT_NAME_RE = re.compile(INPUT_NAME_PATTERN)
MAX_INPUTS = 100
"""Inputs one workflow may declare (each becomes a field of the Dagster launchpad's form)."""
MAX_ENUM_VALUES = 200

_EXAMPLES = {
    "string": '"text"',
    "integer": "3",
    "number": "0.5",
    "boolean": "true",
    "object": '{"key": "value"}',
    "array": '["a", "b"]',
}


class InputSpec(BaseModel):
    """One declared input of a workflow: a key of the execution's ``initial_context``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: InputType = Field(description="string, integer, number, boolean, object or array.")
    required: bool = Field(False, description="A launch without this key is refused (422 / CLI error).")
    default: Any = Field(
        None, description="Filled in when the key is absent; a value of the type (and of enum). Not with required."
    )
    description: str | None = Field(None, description="Shown in the Dagster launchpad's config schema.")
    enum: list[Any] | None = Field(
        None, min_length=1, description="The allowed values (string, integer, number or boolean inputs)."
    )

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Unset parts (null) and ``required: false`` are left out of the stored form."""
        data = handler(self)
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if v is not None and not (k == "required" and v is False)}
        return data  # type: ignore[no-any-return]

    @property
    def has_default(self) -> bool:
        return self.default is not None


class InputError(ValidationError):
    """An initial context that does not satisfy the workflow's inputs; ``details['errors']`` has one entry per
    bad input (``input``, ``location``, ``code``, ``message``)."""

    code = "invalid_inputs"


def type_name(value: Any) -> str:
    """The input type a value has, in the words of ``inputs`` (``null`` for None)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def is_of_type(value: Any, kind: str) -> bool:
    """Whether ``value`` is a value of the input type ``kind`` (the rules of the module docstring)."""
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, Mapping)
    if kind == "array":
        return isinstance(value, list)
    return False


def in_enum(value: Any, enum: list[Any]) -> bool:
    """``value`` is one of ``enum`` (``true`` is not ``1``)."""
    return any(value == allowed and isinstance(value, bool) == isinstance(allowed, bool) for allowed in enum)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def value_problem(spec: InputSpec, value: Any) -> tuple[str, str] | None:
    """(code, what is wrong and the fix) when ``value`` is not a value of ``spec``; None when it is."""
    if not is_of_type(value, spec.type):
        return "wrong_type", (
            f"must be of type {spec.type} (got {type_name(value)} {_short(value)}): pass e.g. {_EXAMPLES[spec.type]}"
        )
    if spec.enum is not None and not in_enum(value, spec.enum):
        allowed = ", ".join(_short(v) for v in spec.enum[:20]) + (", ..." if len(spec.enum) > 20 else "")
        return "not_in_enum", f"{_short(value)} is not one of the allowed values: use one of {allowed}"
    return None


def context_problems(
    inputs: Mapping[str, InputSpec], context: Mapping[str, Any], *, require: bool = True
) -> list[dict[str, str]]:
    """Every bad input of ``context``: one ``{input, location, code, message}`` per input, in declared order.
    ``require=False`` checks only the keys that are present (a sensor adds keys when it fires)."""
    problems: list[dict[str, str]] = []
    for name, spec in inputs.items():
        if name not in context:
            if require and spec.required:
                about = f" ({spec.description})" if spec.description else ""
                message = (
                    f"required input {name!r}{about} is missing: pass it in the initial context, "
                    f'e.g. {{"{name}": {_EXAMPLES[spec.type]}}}'
                )
                problems.append(
                    {"input": name, "location": f"initial_context.{name}", "code": "missing_input", "message": message}
                )
            continue
        found = value_problem(spec, context[name])
        if found is not None:
            code, message = found
            problems.append(
                {
                    "input": name,
                    "location": f"initial_context.{name}",
                    "code": code,
                    "message": f"input {name!r} {message}",
                }
            )
    return problems


def with_defaults(inputs: Mapping[str, InputSpec], context: Mapping[str, Any] | None) -> dict[str, Any]:
    """``context`` with the defaults of the inputs it lacks (copies: a node never changes the definition's)."""
    merged = dict(context or {})
    for name, spec in inputs.items():
        if name not in merged and spec.has_default:
            merged[name] = copy.deepcopy(spec.default)
    return merged


def apply_inputs(
    inputs: Mapping[str, InputSpec], context: Mapping[str, Any] | None, *, workflow_id: str | None = None
) -> dict[str, Any]:
    """The initial context an execution starts with: ``context`` checked against ``inputs`` and completed with
    their defaults. ``InputError`` names each bad input (nothing may be launched then)."""
    context = dict(context or {})
    problems = context_problems(inputs, context)
    if problems:
        who = f"workflow {workflow_id!r}: " if workflow_id else ""
        listed = "; ".join(p["message"] for p in problems)
        raise InputError(
            f"{who}the initial context does not satisfy the workflow's inputs ({len(problems)} problem(s)): {listed}",
            details={"workflow_id": workflow_id, "errors": problems},
        )
    return with_defaults(inputs, context)
