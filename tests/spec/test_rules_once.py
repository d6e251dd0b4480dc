"""Rules declared once (issue 13, point 3): validation, the job build and the run read executor references,
built-in names, the allowlist setting and the condition functions from the same single authority, so they
agree on every input, including those where they once disagreed (a built-in name with surrounding spaces)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from dagster import DagsterInstance
from simpleeval import FunctionNotDefined, NameNotDefined

from maestro_dagster.compiler import build_job
from maestro_dagster.compiler.conditions import BoundedEval, decide, evaluate_condition
from maestro_dagster.errors import ExecutorError
from maestro_dagster.executors import BUILTIN_FUNCTIONS, resolve_executor
from maestro_dagster.policy import (
    ALLOWLIST_SETTING,
    API_BUILTINS_SETTING,
    BUILTIN_EXECUTORS,
    ORIGIN_API,
    DefinitionPolicy,
    ExecutorPolicy,
)
from maestro_dagster.settings import Settings
from maestro_dagster.spec import CONDITION_FUNCTIONS, WorkflowSpec, parse_condition, validate_definition
from maestro_dagster.spec.models import NodeSpec

REPOSITORY = ExecutorPolicy.allowing("json")
API = ExecutorPolicy.for_origin(Settings(MAESTRO_EXECUTOR_ALLOWLIST="json"), ORIGIN_API)
OWN_PACKAGE = ExecutorPolicy.allowing("maestro_dagster")  # an allowlist that names the package itself
#: enough config for every built-in's config rules
FULL_CONFIG = {"args": ["echo"], "url": "https://example.com", "statement": "SELECT 1", "connection": "main"}


def _raw(executor: str, **node: Any) -> dict[str, Any]:
    return {"id": "rules_once", "nodes": {"a": {"executor": executor, **node}}, "edges": []}


def _validator_code(executor: str, policy: ExecutorPolicy, **node: Any) -> str | None:
    report = validate_definition(_raw(executor, **node), policy=DefinitionPolicy(executors=policy))
    codes = [p.code for p in report.errors if p.location.startswith("nodes.a.")]
    assert report.ok == (not codes), report.errors
    return codes[0] if codes else None


def _compiler_code(executor: str, policy: ExecutorPolicy) -> str | None:
    spec = WorkflowSpec.model_validate(_raw(executor))  # the shape only: the compiler applies the policy itself
    try:
        build_job(spec, executors=policy)
    except ExecutorError as exc:
        return exc.code
    return None


# (reference, policy, what validation and the job build both say: None = accepted, else the problem code)
CASES = [
    ("noop", REPOSITORY, None),
    (" noop ", REPOSITORY, None),  # once refused by validation as "not a built-in" but run as noop
    ("command", API, "executor_not_allowed"),
    (" command", API, "executor_not_allowed"),
    ("http", API, None),
    ("json:dumps", REPOSITORY, None),
    ("json:dumps ", REPOSITORY, None),
    ("json:no_such_function", REPOSITORY, "unknown_executor"),
    ("json:codecs.open", REPOSITORY, "executor_not_allowed"),  # json imports it; defined outside the allowlist
    ("json:_default_encoder", REPOSITORY, "unknown_executor"),
    ("os:system", REPOSITORY, "executor_not_allowed"),
    ("maestro_dagster.executors.noop:noop_executor", OWN_PACKAGE, "executor_not_allowed"),
    ("maestro_dagster.executors.registry:BUILTIN_FUNCTIONS.get", REPOSITORY, "executor_not_allowed"),
    ("no-op", REPOSITORY, "unknown_executor"),
    ("json:", REPOSITORY, "unknown_executor"),
]


@pytest.mark.parametrize(("ref", "policy", "expected"), CASES, ids=[c[0] for c in CASES])
def test_validation_and_job_build_agree_on_every_reference(ref: str, policy: ExecutorPolicy, expected: str | None):
    assert _validator_code(ref, policy, config=FULL_CONFIG) == expected
    assert _compiler_code(ref, policy) == expected
    if expected is None:
        assert resolve_executor(ref, policy).ref == ref.strip()


def test_a_builtin_read_with_spaces_is_the_builtin_its_config_rules_included():
    """The config rules of a built-in apply to the name as the resolver reads it, not to the raw text."""
    assert _validator_code(" command ", REPOSITORY) == "bad_config"
    assert _validator_code(" command ", REPOSITORY, config={"args": ["echo", "hi"]}) is None
    resolved = resolve_executor(" command ", REPOSITORY)
    assert resolved.builtin and resolved.fn is BUILTIN_FUNCTIONS["command"] and resolved.enforces_own_timeout


def test_an_accepted_reference_with_spaces_runs_as_the_builtin():
    spec = WorkflowSpec.model_validate(_raw(" noop "))
    job = build_job(spec, executors=REPOSITORY)
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert result.success


def test_every_builtin_name_resolves_to_its_own_function_and_nothing_else_is_builtin():
    assert tuple(BUILTIN_FUNCTIONS) == BUILTIN_EXECUTORS
    for name in BUILTIN_EXECUTORS:
        resolved = resolve_executor(name, REPOSITORY)
        assert resolved.builtin and resolved.fn.__name__ == f"{name}_executor"
        assert _validator_code(name, REPOSITORY, config=FULL_CONFIG) is None
    description = NodeSpec.model_fields["executor"].description or ""
    assert f"({', '.join(BUILTIN_EXECUTORS)})" in description and ALLOWLIST_SETTING in description


def test_the_allowlist_setting_is_read_once_for_settings_and_code():
    settings = Settings(MAESTRO_EXECUTOR_ALLOWLIST=" json , ,maestro_examples ,")
    from_settings = ExecutorPolicy.for_origin(settings, "repository")
    assert from_settings.allowed_prefixes == ("json", "maestro_examples")
    assert ExecutorPolicy.allowing(" json ", "", "maestro_examples") == from_settings
    assert _validator_code("json:dumps", from_settings) is None
    assert _compiler_code("json:dumps", from_settings) is None
    assert _validator_code("json:dumps", ExecutorPolicy.for_origin(Settings(), "repository")) == (
        "executor_not_allowed"
    )
    # the names in messages are the Settings fields' own aliases
    assert Settings.model_fields["executor_allowlist"].validation_alias == ALLOWLIST_SETTING
    assert Settings.model_fields["api_builtin_executors"].validation_alias == API_BUILTINS_SETTING
    with pytest.raises(ExecutorError, match=ALLOWLIST_SETTING):
        resolve_executor("os:system", from_settings)
    api = ExecutorPolicy.for_origin(Settings(MAESTRO_API_BUILTIN_EXECUTORS=" noop, ,sql "), ORIGIN_API)
    assert api.allowed_builtins == frozenset({"noop", "sql"})
    assert _compiler_code("sql", api) is None and _compiler_code("http", api) == "executor_not_allowed"


# ---- conditions ------------------------------------------------------------------------------------
CALLS = {
    "any": "any([False, True])",
    "all": "all([1, 'x'])",
    "len": "len('abc') == 3",
    "str": "str(12) == '12'",
    "int": "int('7') == 7",
    "float": "float('0.5') == 0.5",
    "bool": "bool(1)",
    "min": "min(3, 1) == 1",
    "max": "max([3, 1]) == 3",
    "abs": "abs(-2) == 2",
    "round": "round(1.26, 1) == 1.3",
}


def _evaluator() -> BoundedEval:
    return BoundedEval({"outputs": {}, "global_context": {}}, time.monotonic() + 30, 30)


def test_every_function_the_checker_allows_is_callable_at_run_time():
    assert set(CALLS) == set(CONDITION_FUNCTIONS)
    assert set(_evaluator().functions) == set(CONDITION_FUNCTIONS)
    for name, expression in CALLS.items():
        assert parse_condition(expression).error is None, name
        assert evaluate_condition(expression, {}, {}) == (True, None), name
        assert decide(expression, {}, {}, on_error="fail").run, name


@pytest.mark.parametrize("name", ["sorted", "sum", "list", "dict", "getattr", "open", "type", "range", "print"])
def test_a_function_the_checker_refuses_is_refused_at_run_time_too(name: str):
    expression = f"{name}([1]) == 1"
    assert "uses the name" in (parse_condition(expression).error or "")
    value, error = evaluate_condition(expression, {}, {})
    assert value is True and error is not None and error.startswith("refused:")
    with pytest.raises((FunctionNotDefined, NameNotDefined)):
        _evaluator().eval(expression)  # the evaluator itself offers nothing the checker refuses


def test_the_functions_bounds_are_the_same_in_both():
    value, error = evaluate_condition("round(1.5, 1000) == 1.5", {}, {})
    assert value is True and error is not None and "ndigits" in error
    with pytest.raises(ExecutorError, match="ndigits"):
        decide("round(1.5, 1000) == 1.5", {}, {}, on_error="fail")
