"""Node-level checks on the lenient ``RawView``: executors, built-in executor config, conditions.

Executors: decided by :mod:`maestro_dagster.policy` (the resolver the runtime uses too): a built-in by its
name when the definition's origin may use it, or an allowlisted ``package.module:function`` resolved to a
callable defined inside the allowlist.
Conditions: the rules of :mod:`.conditions` (the ones the runtime evaluator applies too), and every
``outputs['x']`` they read must be a node that runs before them (one ancestry pass over the graph, see
:mod:`.graph`). Each check returns :class:`SpecProblem` objects and never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from maestro_dagster.errors import ExecutorNotAllowedError, UnknownExecutorError
from maestro_dagster.policy import DefinitionLimits, ExecutorPolicy, ExecutorRef, resolve_ref
from maestro_dagster.spec.checks import RawView
from maestro_dagster.spec.conditions import CONDITION_FUNCTIONS, CONDITION_METHODS, CONDITION_NAMES, parse_condition
from maestro_dagster.spec.models import executor_ref_for
from maestro_dagster.spec.problems import SpecProblem

__all__ = [
    "CONDITION_FUNCTIONS",
    "CONDITION_METHODS",
    "CONDITION_NAMES",
    "ConditionInfo",
    "analyse_condition",
    "check_conditions",
    "check_executor_ref",
    "check_executors",
]


# ---- executors -------------------------------------------------------------------------------------
def check_executor_ref(ref: str, policy: ExecutorPolicy, *, check_imports: bool = True) -> tuple[str, str] | None:
    """``(code, message)`` when ``ref`` cannot run under ``policy``, else ``None``.

    The same resolver as the runtime (:func:`maestro_dagster.policy.resolve_ref`): what validation accepts,
    the run resolves. With ``check_imports=False`` only the text is checked (syntax, prefix).
    """
    read = _read_ref(ref, policy, check_imports)
    return None if isinstance(read, ExecutorRef) else read


def _read_ref(ref: str, policy: ExecutorPolicy, check_imports: bool) -> ExecutorRef | tuple[str, str]:
    """The reference as the policy reads it, or ``(code, message)`` when the policy refuses it."""
    try:
        return resolve_ref(ref, policy, import_module=check_imports)
    except (ExecutorNotAllowedError, UnknownExecutorError) as exc:
        return exc.code, exc.message


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
        read = _read_ref(ref, policy, check_imports)
        if not isinstance(read, ExecutorRef):
            code, message = read
            problems.append(SpecProblem(f"nodes.{node_id}.executor", f"node {node_id!r}: {message}", code, node_id))
            continue
        config = node.get("config", {})
        if read.builtin and isinstance(config, Mapping) and (config_message := _config_problem(read.ref, config)):
            problems.append(
                SpecProblem(f"nodes.{node_id}.config", f"node {node_id!r}: {config_message}", "bad_config", node_id)
            )
    return problems


# ---- conditions ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConditionInfo:
    error: str | None
    output_refs: tuple[str, ...] = ()


def analyse_condition(expression: str, limits: DefinitionLimits | None = None) -> ConditionInfo:
    """Check a condition against the rules of :mod:`.conditions` (length, depth, syntax, names, calls)."""
    parsed = parse_condition(expression, limits)
    return ConditionInfo(parsed.error, parsed.output_refs)


def _shown(condition: str) -> str:
    text = repr(condition)
    return text if len(text) <= 80 else text[:77] + "..."


EXPRESSION_FIELDS = ("condition", "for_each")  # both in the condition language, checked the same way


def check_conditions(view: RawView, limits: DefinitionLimits | None = None) -> list[SpecProblem]:
    """Each condition and ``for_each`` against the rules; every ``outputs['x']`` one reads must be a node that runs
    before it. A ``for_each`` node may not also declare an ``sla`` (its steps are one per item)."""
    problems = []
    reads: list[tuple[str, str, tuple[str, ...]]] = []
    analysed: dict[str, ConditionInfo] = {}  # the same text is checked once per definition
    for node_id, node in view.nodes.items():
        for field in EXPRESSION_FIELDS:
            expression = node.get(field)
            if not isinstance(expression, str):
                continue
            info = analysed.get(expression)
            if info is None:
                info = analysed[expression] = analyse_condition(expression, limits)
            label = "condition" if field == "condition" else "for_each"
            if info.error:
                problems.append(
                    SpecProblem(
                        f"nodes.{node_id}.{field}",
                        f"node {node_id!r}: {label} {_shown(expression)} {info.error}",
                        f"bad_{field}",
                        node_id,
                    )
                )
            elif info.output_refs:
                reads.append((node_id, field, info.output_refs))
        if node.get("for_each") is not None and node.get("sla") is not None:
            message = (f"node {node_id!r}: a for_each node cannot have an sla (it runs one step per item): move "
                       "the sla to the workflow, or to a node after it")  # fmt: skip
            problems.append(SpecProblem(f"nodes.{node_id}.sla", message, "bad_for_each", node_id))
    if not reads:
        return problems
    ancestry = view.graph.ancestry(ref for _, _, refs in reads for ref in refs if ref in view.nodes)
    for node_id, field, refs in reads:
        for ref in refs:
            if ref not in view.nodes:
                fix = f"unknown node {ref!r}: fix the node id"
            elif not ancestry.runs_before(ref, node_id):
                fix = f"node {ref!r}, which does not run before it: add an edge path from {ref!r} to {node_id!r}"
            else:
                continue
            label = "condition" if field == "condition" else "for_each"
            problems.append(
                SpecProblem(
                    f"nodes.{node_id}.{field}",
                    f"node {node_id!r}: {label} reads the output of {fix}",
                    f"bad_{field}",
                    node_id,
                )
            )
    return problems
