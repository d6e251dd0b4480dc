"""Node-level checks on the lenient ``RawView``: executors, built-in executor config, conditions.

Executors: decided by :mod:`maestro_dagster.policy` (the resolver the runtime uses too): a built-in by its
name when the definition's origin may use it, or an allowlisted ``package.module:function`` resolved to a
callable defined inside the allowlist.
Conditions: parse + names only (the runtime evaluator is ``simpleeval``), and every ``outputs['x']`` they
read must be an upstream node. Each check returns :class:`SpecProblem` objects and never raises.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from maestro_dagster.errors import ExecutorNotAllowedError, UnknownExecutorError
from maestro_dagster.policy import BUILTIN_EXECUTORS, ExecutorPolicy, module_allowed, resolve_import_ref
from maestro_dagster.spec.checks import RawView
from maestro_dagster.spec.models import executor_ref_for
from maestro_dagster.spec.problems import SpecProblem

CONDITION_NAMES: tuple[str, ...] = ("outputs", "global_context")
CONDITION_FUNCTIONS: tuple[str, ...] = (
    "any", "all", "len", "str", "int", "float", "bool", "min", "max", "abs", "round",
)  # fmt: skip
_UNSUPPORTED_SYNTAX = {
    ast.Lambda: "lambda",
    ast.NamedExpr: "':=' (assignment)",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield from",
}


# ---- executors -------------------------------------------------------------------------------------
def is_module_allowed(module: str, allowed_prefixes: Sequence[str]) -> bool:
    """Prefix match at a dot boundary: ``maestro_examples`` allows ``maestro_examples.x``, not ``..._evil``."""
    return module_allowed(module, allowed_prefixes)


def check_executor_ref(ref: str, policy: ExecutorPolicy, *, check_imports: bool = True) -> tuple[str, str] | None:
    """``(code, message)`` when ``ref`` cannot run under ``policy``, else ``None``.

    The same resolver as the runtime (:func:`maestro_dagster.policy.resolve_import_ref`): what validation
    accepts, the run resolves. With ``check_imports=False`` only the text is checked (syntax, prefix).
    """
    try:
        if ref in BUILTIN_EXECUTORS:
            policy.check_builtin(ref)
        else:
            resolve_import_ref(ref, policy, import_module=check_imports)
    except (ExecutorNotAllowedError, UnknownExecutorError) as exc:
        return exc.code, exc.message
    return None


def _config_problem(kind: str, config: Mapping[str, Any]) -> str | None:
    if kind == "command":
        args = config.get("args")
        if isinstance(args, list) and args and all(isinstance(a, str) for a in args):
            return None
        if isinstance(config.get("command"), str) and config["command"].strip():
            if config.get("shell") is True:
                return None
            return "config.command runs through a shell: add 'shell: true', or give 'args' as a list instead"
        return "the command executor needs config.args, a non-empty list of strings (e.g. ['echo', 'hi'])"
    if kind == "http" and not (isinstance(config.get("url"), str) and config["url"].strip()):
        return "the http executor needs config.url (e.g. 'https://example.com/hook')"
    if kind == "sql":
        missing = [k for k in ("statement", "connection") if not isinstance(config.get(k), str) or not config[k]]
        if missing:
            return (
                f"the sql executor needs {' and '.join('config.' + k for k in missing)} (the connection is a "
                "name from MAESTRO_SQL_CONNECTIONS)"
            )
    return None


def check_executors(view: RawView, policy: ExecutorPolicy, *, check_imports: bool = True) -> list[SpecProblem]:
    problems = []
    for node_id, node in view.nodes.items():
        executor, node_type = node.get("executor"), node.get("type")
        if executor is not None and not isinstance(executor, str):
            continue  # pydantic reports the type
        ref = executor_ref_for(executor, node_type if isinstance(node_type, str) else None)
        found = check_executor_ref(ref, policy, check_imports=check_imports)
        if found:
            code, message = found
            problems.append(SpecProblem(f"nodes.{node_id}.executor", f"node {node_id!r}: {message}", code, node_id))
            continue
        config = node.get("config", {})
        if isinstance(config, Mapping) and (message := _config_problem(ref, config)):
            problems.append(
                SpecProblem(f"nodes.{node_id}.config", f"node {node_id!r}: {message}", "bad_config", node_id)
            )
    return problems


# ---- conditions ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConditionInfo:
    error: str | None
    output_refs: tuple[str, ...] = ()


def analyse_condition(expression: str) -> ConditionInfo:
    """Parse a condition; check it only uses ``outputs``, ``global_context`` and the allowed functions."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        return ConditionInfo(f"does not parse as an expression ({exc.msg}, column {exc.offset})")
    bound = {
        target.id
        for comp in ast.walk(tree)
        if isinstance(comp, ast.comprehension)
        for target in ast.walk(comp.target)
        if isinstance(target, ast.Name)
    }
    allowed = {*CONDITION_NAMES, *CONDITION_FUNCTIONS, *bound}
    refs: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        for syntax, label in _UNSUPPORTED_SYNTAX.items():
            if isinstance(node, syntax):
                return ConditionInfo(f"uses {label}, which conditions do not support")
        if isinstance(node, ast.Name) and node.id not in allowed:
            return ConditionInfo(
                f"uses the name {node.id!r}: only {', '.join(CONDITION_NAMES)} and the functions "
                f"{', '.join(CONDITION_FUNCTIONS)} are available"
            )
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            return ConditionInfo(f"accesses the private attribute {node.attr!r}, which is not allowed")
        ref = _output_ref(node)
        if ref is not None:
            refs.append((node.lineno, node.col_offset, ref))
    return ConditionInfo(None, tuple(dict.fromkeys(ref for *_, ref in sorted(refs))))


def _output_ref(node: ast.AST) -> str | None:
    """The node id in ``outputs['x']`` or ``outputs.get('x')``."""
    if isinstance(node, ast.Subscript):
        base, key = node.value, node.slice
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        base, key = node.func.value, (node.args[0] if node.args else None)
    else:
        return None
    if isinstance(base, ast.Name) and base.id == "outputs" and isinstance(key, ast.Constant):
        return key.value if isinstance(key.value, str) else None
    return None


def _ancestors(node_id: str, edges: list[tuple[str, str]]) -> set[str]:
    seen: set[str] = set()
    stack = [node_id]
    while stack:
        current = stack.pop()
        for source, target in edges:
            if target == current and source not in seen:
                seen.add(source)
                stack.append(source)
    return seen


def check_conditions(view: RawView) -> list[SpecProblem]:
    problems = []
    for node_id, node in view.nodes.items():
        condition = node.get("condition")
        if not isinstance(condition, str):
            continue
        loc = f"nodes.{node_id}.condition"
        info = analyse_condition(condition)
        if info.error:
            problems.append(
                SpecProblem(loc, f"node {node_id!r}: condition {condition!r} {info.error}", "bad_condition", node_id)
            )
            continue
        ancestors = _ancestors(node_id, view.graph_edges) if info.output_refs else set()
        for ref in info.output_refs:
            if ref not in view.nodes:
                fix = f"unknown node {ref!r}: fix the node id"
            elif ref not in ancestors:
                fix = f"node {ref!r}, which does not run before it: add an edge path from {ref!r} to {node_id!r}"
            else:
                continue
            problems.append(
                SpecProblem(loc, f"node {node_id!r}: condition reads the output of {fix}", "bad_condition", node_id)
            )
    return problems
