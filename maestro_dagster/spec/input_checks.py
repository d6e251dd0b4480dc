"""Definition-time checks of ``inputs:`` and of the contexts the triggers start executions with.

Run by :func:`maestro_dagster.spec.validate.validate_definition` on the raw definition (lenient: a bad input
never hides the others, and pydantic's own errors under ``inputs`` are replaced by these, which name the input
and the fix). Checked: the count (at most ``inputs.MAX_INPUTS``, before anything else looks at them), names
(identifiers), types, ``required``/``description``/``enum`` shapes, a default of its type and in its enum, a
required input with a default, enum values of the type; then each schedule's ``initial_context`` is a whole
context that must satisfy the inputs (nothing else adds keys to a scheduled run), and each sensor's
``initial_context`` must give declared keys values of their type (the sensor adds its own keys when it fires,
so required inputs are checked then). The value rules themselves are :mod:`.inputs`'.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from maestro_dagster.spec.inputs import (
    ENUM_TYPES,
    INPUT_NAME_RE,
    INPUT_TYPES,
    MAX_ENUM_VALUES,
    MAX_INPUTS,
    InputSpec,
    context_problems,
    in_enum,
    is_of_type,
    value_problem,
)
from maestro_dagster.spec.problems import SpecProblem

_FIELDS = ("type", "required", "default", "description", "enum")


def _problem(location: str, message: str, code: str = "bad_input") -> SpecProblem:
    return SpecProblem(location, message, code)


def input_count_problems(raw: Mapping[str, Any]) -> list[SpecProblem]:
    """``too_large`` when ``inputs`` declares more than ``MAX_INPUTS`` (checked with the other counts, first)."""
    inputs = raw.get("inputs")
    if not isinstance(inputs, Mapping) or len(inputs) <= MAX_INPUTS:
        return []
    return [
        _problem(
            "inputs",
            f"the workflow declares {len(inputs)} inputs, more than the limit of {MAX_INPUTS}: group related "
            "values into one input of type object (its keys are free), or split the workflow",
            "too_large",
        )
    ]


def input_problems(raw: Mapping[str, Any]) -> list[SpecProblem]:
    """Every problem of the raw definition's ``inputs`` (empty when it has none)."""
    inputs = raw.get("inputs")
    if inputs is None:
        return []
    if not isinstance(inputs, Mapping):
        return [
            _problem(
                "inputs",
                f"'inputs' must be a mapping of input name -> {{type: ...}} (got "
                f"{type(inputs).__name__}): write e.g. 'inputs: {{region: {{type: string}}}}'",
            )
        ]
    count = input_count_problems(raw)
    if count:
        return count
    problems: list[SpecProblem] = []
    for name, declared in inputs.items():
        problems += _one_input(str(name), declared)
    return problems


def _one_input(name: str, declared: Any) -> list[SpecProblem]:
    where = f"inputs.{name}"
    problems: list[SpecProblem] = []
    if not INPUT_NAME_RE.match(name):
        problems.append(
            _problem(
                where,
                f"input name {name!r} is not allowed: use 1 to 64 letters, digits and '_', not starting "
                "with a digit (e.g. 'region' or 'max_rows'), so it is a Dagster config field too",
            )
        )
    if not isinstance(declared, Mapping):
        return [
            *problems,
            _problem(
                where, f"input {name!r} must be a mapping such as {{type: string}} (got {type(declared).__name__})"
            ),
        ]
    for key in declared:
        if key not in _FIELDS:
            problems.append(
                _problem(
                    f"{where}.{key}",
                    f"input {name!r}: unknown field {str(key)!r}: remove it or fix "
                    f"its spelling; allowed fields: {', '.join(_FIELDS)}",
                )
            )
    kind = declared.get("type")
    if kind not in INPUT_TYPES:
        shown = "missing" if kind is None else f"{kind!r}"
        problems.append(
            _problem(f"{where}.type", f"input {name!r}: type is {shown}: write one of {', '.join(INPUT_TYPES)}")
        )
        kind = None
    required = declared.get("required", False)
    if not isinstance(required, bool):
        problems.append(
            _problem(f"{where}.required", f"input {name!r}: required must be true or false (got {required!r})")
        )
    description = declared.get("description")
    if description is not None and not isinstance(description, str):
        problems.append(
            _problem(
                f"{where}.description",
                f"input {name!r}: description must be text (got {type(description).__name__}): quote it",
            )
        )
    enum = declared.get("enum")
    enum_ok = False
    if enum is not None:
        enum_ok = _enum_problems(name, kind, enum, problems)
    default = declared.get("default")
    if default is not None:
        if required is True:
            problems.append(
                _problem(
                    f"{where}.default",
                    f"input {name!r} is required and has a default: an input with a default "
                    "is optional (the default is used when the key is absent); remove 'required: true' or "
                    "remove the default",
                )
            )
        if kind is not None:
            spec = InputSpec(type=kind, enum=enum if enum_ok else None)
            found = value_problem(spec, default)
            if found is not None:
                problems.append(_problem(f"{where}.default", f"input {name!r}: the default {found[1]}"))
    return problems


def _enum_problems(name: str, kind: str | None, enum: Any, problems: list[SpecProblem]) -> bool:
    """Appends the problems of ``enum``; True when it can be used to check the default."""
    where = f"inputs.{name}.enum"
    if not isinstance(enum, list) or not enum:
        problems.append(
            _problem(
                where,
                f"input {name!r}: enum must be a non-empty list of the allowed values "
                "(e.g. enum: [small, large]), or be removed",
            )
        )
        return False
    if kind is not None and kind not in ENUM_TYPES:
        problems.append(
            _problem(where, f"input {name!r}: enum is only for {', '.join(ENUM_TYPES)} inputs, not {kind}: remove it")
        )
        return False
    if len(enum) > MAX_ENUM_VALUES:
        problems.append(
            _problem(
                where,
                f"input {name!r}: enum has {len(enum)} values, more than {MAX_ENUM_VALUES}: "
                "use a string input without enum and check the value in a node",
            )
        )
        return False
    ok = True
    if kind is not None:
        for index, value in enumerate(enum):
            if not is_of_type(value, kind):
                problems.append(
                    _problem(
                        f"{where}[{index}]",
                        f"input {name!r}: enum value {value!r} is not of type "
                        f"{kind}: fix it or change the input's type",
                    )
                )
                ok = False
    for index, value in enumerate(enum):
        if in_enum(value, enum[:index]):
            problems.append(
                _problem(f"{where}[{index}]", f"input {name!r}: enum value {value!r} is listed twice: remove one")
            )
    return ok


def trigger_context_problems(raw: Mapping[str, Any]) -> list[SpecProblem]:
    """Schedules' contexts must satisfy the inputs; sensors' must give declared keys values of their type."""
    inputs = _parsed_inputs(raw)
    if not inputs:
        return []
    problems: list[SpecProblem] = []
    for key, whole in (("schedules", True), ("sensors", False)):
        entries = raw.get(key)
        if not isinstance(entries, list):
            continue
        for index, entry in enumerate(entries):
            context = entry.get("initial_context") if isinstance(entry, Mapping) else None
            if context is not None and not isinstance(context, Mapping):
                continue  # the schema check reports it
            for found in context_problems(inputs, context or {}, require=whole):
                fix = " (a schedule's runs get only this context)" if found["code"] == "missing_input" else ""
                problems.append(
                    SpecProblem(
                        f"{key}[{index}].initial_context.{found['input']}",
                        f"{key}[{index}]: {found['message']}{fix}",
                        "bad_trigger_context",
                    )
                )
    return problems


def _parsed_inputs(raw: Mapping[str, Any]) -> dict[str, InputSpec]:
    """The inputs that are valid on their own (the others have their problems reported already)."""
    inputs = raw.get("inputs")
    if not isinstance(inputs, Mapping) or len(inputs) > MAX_INPUTS:
        return {}
    parsed: dict[str, InputSpec] = {}
    for name, declared in inputs.items():
        if isinstance(declared, Mapping) and not _one_input(str(name), declared):
            parsed[str(name)] = InputSpec.model_validate(dict(declared))
    return parsed
