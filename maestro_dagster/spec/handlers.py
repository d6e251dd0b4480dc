"""Failure handlers in a definition: the top-level ``on_failure:`` and ``finally:`` maps, and their checks.

Both are maps of node id -> node (the fields of a node under ``nodes``), run in the same execution once the other
nodes are done: ``on_failure`` nodes when a node failed or the execution was cancelled (they skip themselves when
nothing failed), then ``finally`` nodes whatever happened. Handler nodes take no edges, neither among themselves
nor to or from the other nodes, and no ``dependencies``; the nodes of a group run side by side. Ids are unique
across ``nodes``, ``on_failure`` and ``finally`` (and their Dagster names too). How they run:
``maestro_dagster.compiler.handlers``. Each check returns :class:`SpecProblem` objects and never raises.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from maestro_dagster import names
from maestro_dagster.policy import DefinitionLimits, ExecutorPolicy
from maestro_dagster.spec import checks, node_checks
from maestro_dagster.spec.limits import check_config_sizes
from maestro_dagster.spec.models import HANDLER_GROUPS
from maestro_dagster.spec.problems import SpecProblem

MAX_HANDLERS = 100
"""The most handler nodes one group may hold."""


def raw_handlers(raw: Mapping[str, Any]) -> dict[str, dict[str, Mapping[str, Any]]]:
    """Group -> {node id -> its raw fields} as written (a group that is not a mapping reads as empty)."""
    out: dict[str, dict[str, Mapping[str, Any]]] = {}
    for group in HANDLER_GROUPS:
        value = raw.get(group)
        if isinstance(value, Mapping):
            out[group] = {str(k): (v if isinstance(v, Mapping) else {}) for k, v in value.items()}
    return out


def handler_ids(raw: Mapping[str, Any]) -> dict[str, str]:
    """Handler node id -> its group (the first group it is written in)."""
    out: dict[str, str] = {}
    for group, nodes in raw_handlers(raw).items():
        for node_id in nodes:
            out.setdefault(node_id, group)
    return out


def _relocated(problem: SpecProblem, group: str) -> SpecProblem:
    """A node check's problem, located under ``group`` instead of ``nodes``."""
    if problem.location.startswith("nodes."):
        return dataclasses.replace(problem, location=group + problem.location[len("nodes") :])
    return problem


def is_handler_edge_problem(problem: SpecProblem, view: checks.RawView, raw: Mapping[str, Any]) -> bool:
    """Is this ``unknown_edge_node`` problem about an edge end that is a handler node (reported better here)?"""
    if problem.code != "unknown_edge_node":
        return False
    handlers = handler_ids(raw)
    for edge in view.edges:
        for end, value in (("source", edge.source), ("target", edge.target)):
            if problem.location == f"edges[{edge.index}].{end}" and value in handlers:
                return True
    return False


def handler_problems(
    raw: Mapping[str, Any],
    view: checks.RawView,
    policy: ExecutorPolicy,
    limits: DefinitionLimits,
    *,
    check_imports: bool = True,
) -> list[SpecProblem]:
    """Every problem of the ``on_failure`` / ``finally`` maps; ``view`` is the lenient reading of ``nodes``."""
    problems: list[SpecProblem] = []
    groups = raw_handlers(raw)
    for group in HANDLER_GROUPS:
        if group in raw and raw[group] is not None and group not in groups:
            problems.append(
                SpecProblem(
                    group,
                    f"'{group}' must be a mapping of node id -> node fields (got {type(raw[group]).__name__}): "
                    f"write '{group}: {{notify: {{executor: noop}}}}'",
                    "schema",
                )
            )
    for group, nodes in groups.items():
        if len(nodes) > MAX_HANDLERS:
            problems.append(
                SpecProblem(
                    group,
                    f"'{group}' has {len(nodes)} nodes, more than {MAX_HANDLERS}: keep a few handlers (one node "
                    "can notify many places)",
                    "too_large",
                )
            )
            return problems
    seen: dict[str, str] = dict.fromkeys(view.node_ids, "nodes")
    for group, nodes in groups.items():
        for node_id, node in nodes.items():
            if node_id in seen:
                problems.append(
                    SpecProblem(
                        f"{group}.{node_id}",
                        f"node id {node_id!r} is defined in both '{seen[node_id]}' and '{group}': ids must be unique "
                        "across nodes, on_failure and finally; rename one of them",
                        "duplicate_id",
                        node_id,
                    )
                )
            else:
                seen[node_id] = group
            if node.get("for_each") is not None:
                problems.append(
                    SpecProblem(
                        f"{group}.{node_id}.for_each",
                        f"{group} node {node_id!r} has a for_each: a handler runs once; move the fan-out to a "
                        "node of 'nodes' (its items' outputs reach the handler) or remove 'for_each'",
                        "bad_for_each",
                        node_id,
                    )
                )
            if node.get("dependencies"):
                problems.append(
                    SpecProblem(
                        f"{group}.{node_id}.dependencies",
                        f"{group} node {node_id!r} lists dependencies {node.get('dependencies')!r}: handler nodes "
                        "take no dependencies (they run after all the other nodes); remove 'dependencies'",
                        "handler_edge",
                        node_id,
                    )
                )
        sub = checks.RawView(view.workflow_id, list(nodes), dict(nodes), [])
        found = checks.check_ids(sub) + check_config_sizes(sub.nodes, limits)
        found += node_checks.check_executors(sub, policy, check_imports=check_imports)
        found += node_checks.check_conditions(sub, limits)
        problems += [_relocated(p, group) for p in found]
    problems += _edge_problems(view, seen)
    problems += _name_problems(seen)
    return problems


def _name_problems(where: Mapping[str, str]) -> list[SpecProblem]:
    """A handler id whose Dagster name is another node's (``nodes`` among themselves are checked elsewhere)."""
    by_name: dict[str, list[str]] = {}
    for node_id in where:
        if names.ID_RE.match(node_id):
            by_name.setdefault(names.dagster_name(node_id), []).append(node_id)
    problems = []
    for name, ids in by_name.items():
        handlers = [i for i in ids if where[i] != "nodes"]
        if len(ids) > 1 and handlers:
            problems.append(
                SpecProblem(
                    f"{where[handlers[0]]}.{handlers[0]}",
                    f"node ids {', '.join(map(repr, ids))} all map to the Dagster name {name!r}: rename one of them",
                    "name_collision",
                    handlers[0],
                )
            )
    return problems


def _edge_problems(view: checks.RawView, where: Mapping[str, str]) -> list[SpecProblem]:
    """An edge with a handler node at either end (handlers take no edges)."""
    problems = []
    for edge in view.edges:
        for end, value in (("source", edge.source), ("target", edge.target)):
            group = where.get(value or "")
            if group is None or group == "nodes":
                continue
            verb = "starts at" if end == "source" else "targets"
            problems.append(
                SpecProblem(
                    f"edges[{edge.index}].{end}",
                    f"edges[{edge.index}] ({edge.source} -> {edge.target}) {verb} {group} node {value!r}: handler "
                    "nodes take no edges (on_failure nodes run after the other nodes when one failed, finally nodes "
                    "always run last); remove the edge",
                    "handler_edge",
                    value,
                )
            )
    return problems
