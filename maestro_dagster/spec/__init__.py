"""Workflow definitions: the models, their validation and the file loader (pure Python, no database).

``validate_definition`` / ``validate_file`` report every problem of a definition at once, within the size
limits of ``DefinitionLimits`` (checked first); ``parse_definition`` raises ``DefinitionError`` with all of
them. ``parse_condition`` applies the condition rules validation and the runtime share.
``python -m maestro_dagster.spec`` regenerates ``workflow.schema.json``.

The names below are imported on first use (PEP 562): a process that needs only the models (the database's
``db.models``, a CLI command reading rows) does not import the loader, YAML, the validation and the conditions.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from maestro_dagster.policy import (
        ALLOWLIST_SETTING,
        BUILTIN_EXECUTORS,
        DefinitionLimits,
        DefinitionPolicy,
        ExecutorPolicy,
    )
    from maestro_dagster.policy import module_allowed as is_module_allowed
    from maestro_dagster.spec.conditions import CONDITION_METHODS, parse_condition
    from maestro_dagster.spec.loader import (
        LoadedFile,
        iter_definition_files,
        load_definition_file,
        validate_file,
        validate_loaded,
    )
    from maestro_dagster.spec.models import (
        NODE_TYPES,
        DefaultsSpec,
        EdgeSpec,
        NodeSpec,
        RetryPolicySpec,
        ScheduleSpec,
        WorkflowSpec,
        executor_ref_for,
    )
    from maestro_dagster.spec.node_checks import (
        CONDITION_FUNCTIONS,
        CONDITION_NAMES,
        analyse_condition,
        check_executor_ref,
    )
    from maestro_dagster.spec.problems import PROBLEM_CODES, DuplicateKey, SpecProblem, ValidationReport
    from maestro_dagster.spec.schema import SCHEMA_PATH, render_schema
    from maestro_dagster.spec.validate import parse_definition, validate_definition

#: The names this package exports, by the module that defines them.
_EXPORTS = {
    "maestro_dagster.policy": ("ALLOWLIST_SETTING", "BUILTIN_EXECUTORS", "DefinitionLimits", "DefinitionPolicy",
                               "ExecutorPolicy"),
    "maestro_dagster.spec.conditions": ("CONDITION_METHODS", "parse_condition"),
    "maestro_dagster.spec.loader": ("LoadedFile", "iter_definition_files", "load_definition_file", "validate_file",
                                    "validate_loaded"),
    "maestro_dagster.spec.models": ("NODE_TYPES", "DefaultsSpec", "EdgeSpec", "NodeSpec", "RetryPolicySpec",
                                    "ScheduleSpec", "WorkflowSpec", "executor_ref_for"),
    "maestro_dagster.spec.node_checks": ("CONDITION_FUNCTIONS", "CONDITION_NAMES", "analyse_condition",
                                         "check_executor_ref"),
    "maestro_dagster.spec.problems": ("PROBLEM_CODES", "DuplicateKey", "SpecProblem", "ValidationReport"),
    "maestro_dagster.spec.schema": ("SCHEMA_PATH", "render_schema"),
    "maestro_dagster.spec.validate": ("parse_definition", "validate_definition"),
}  # fmt: skip
#: Each exported name: (its module, its name there).
_WHERE = {name: (module, name) for module, names in _EXPORTS.items() for name in names} | {
    "is_module_allowed": ("maestro_dagster.policy", "module_allowed")
}


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _WHERE[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # imported once
    return value


__all__ = [
    "ALLOWLIST_SETTING",
    "BUILTIN_EXECUTORS",
    "CONDITION_FUNCTIONS",
    "CONDITION_METHODS",
    "CONDITION_NAMES",
    "NODE_TYPES",
    "PROBLEM_CODES",
    "SCHEMA_PATH",
    "DefaultsSpec",
    "DefinitionLimits",
    "DefinitionPolicy",
    "DuplicateKey",
    "EdgeSpec",
    "ExecutorPolicy",
    "LoadedFile",
    "NodeSpec",
    "RetryPolicySpec",
    "ScheduleSpec",
    "SpecProblem",
    "ValidationReport",
    "WorkflowSpec",
    "analyse_condition",
    "check_executor_ref",
    "executor_ref_for",
    "is_module_allowed",
    "iter_definition_files",
    "load_definition_file",
    "parse_condition",
    "parse_definition",
    "render_schema",
    "validate_definition",
    "validate_file",
    "validate_loaded",
]
