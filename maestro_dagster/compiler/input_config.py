"""The Dagster run config schema of a job's ``initial_context``, typed from the workflow's ``inputs:``.

A workflow without inputs keeps the free ``Permissive()`` mapping it always had (optional, default ``{}``). With
inputs, ``initial_context`` is a ``Permissive`` whose declared keys are typed fields (``String``, ``Int``,
``Float``, ``Bool``, ``Permissive()`` for object, ``Array(Any)`` for array) with their ``is_required``, default
and description, so the launchpad's form shows them and Dagster refuses a launch whose values have the wrong
type or lack a required input; undeclared keys stay allowed. Enums have no typed Dagster form for every type:
the job's config mapping calls :func:`maestro_dagster.spec.inputs.apply_inputs` on every launch, which refuses a
value outside its enum (and fills in the defaults the mirror records), whoever launched the run.
"""

from __future__ import annotations

from typing import Any

from dagster import Array, Bool, Field, Float, Int, Permissive, String

from maestro_dagster.spec.inputs import InputSpec
from maestro_dagster.spec.models import WorkflowSpec

_CONFIG_TYPES: dict[str, Any] = {
    "string": String,
    "integer": Int,
    "number": Float,
    "boolean": Bool,
    "object": Permissive(),
    "array": Array(Any),
}


def _field(spec: InputSpec) -> Field:
    parts = [spec.description or f"{spec.type} input"]
    if spec.enum is not None:
        parts.append("one of: " + ", ".join(repr(v) for v in spec.enum))
    kwargs: dict[str, Any] = {"is_required": spec.required, "description": "; ".join(parts)}
    if spec.has_default:
        kwargs["default_value"] = spec.default
    config_type = Permissive() if spec.type == "object" else _CONFIG_TYPES[spec.type]  # a fresh one per field
    return Field(config_type, **kwargs)


def initial_context_field(spec: WorkflowSpec) -> Field:
    """The ``initial_context`` field of the job's run config (see the module docstring)."""
    description = "global_context of the execution"
    if not spec.inputs:
        return Field(Permissive(), is_required=False, default_value={}, description=description)
    fields = {name: _field(inp) for name, inp in spec.inputs.items()}
    names = ", ".join(spec.inputs)
    description = f"{description}; typed inputs: {names} (other keys are free)"
    if any(inp.required for inp in spec.inputs.values()):
        return Field(Permissive(fields), is_required=True, description=description)
    return Field(Permissive(fields), is_required=False, default_value={}, description=description)
