"""Graph checks that run on a lenient reading of the raw definition (``RawView``).

They run even when pydantic rejected some field, so one bad node never hides the graph's other problems:
ids, Dagster name collisions, edges (unknown ends, self loops, duplicates), cycles (with their path) and
``dependencies`` against edges. The view builds its edge lists and its graph (:mod:`.graph`) once, so every
check is linear in nodes + edges. Node-level checks (executors, config, conditions) are in
:mod:`.node_checks`, size limits in :mod:`.limits`. Each check returns :class:`SpecProblem` objects and never
raises on bad input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from maestro_dagster import names
from maestro_dagster.spec.graph import GraphIndex
from maestro_dagster.spec.problems import SpecProblem


@dataclass(frozen=True)
class RawEdge:
    index: int
    source: str | None
    target: str | None


@dataclass(frozen=True)
class RawView:
    """What can be read from a raw definition without trusting it."""

    workflow_id: str | None
    node_ids: list[str]
    nodes: dict[str, Mapping[str, Any]]
    edges: list[RawEdge]

    @cached_property
    def graph_edges(self) -> list[tuple[str, str]]:
        """Distinct edges whose ends both exist, without self loops, in written order (computed once)."""
        known = set(self.node_ids)
        pairs = ((e.source, e.target) for e in self.edges)
        return [(s, t) for s, t in dict.fromkeys(pairs) if s in known and t in known and s != t and s and t]

    @cached_property
    def sources_by_target(self) -> dict[str, list[str]]:
        """Target -> the distinct sources of the edges written to it, in edge order (any ends; computed once)."""
        incoming: dict[str, dict[str, None]] = {}
        for edge in self.edges:
            if edge.target is not None and edge.source:
                incoming.setdefault(edge.target, {})[edge.source] = None
        return {target: list(sources) for target, sources in incoming.items()}

    @cached_property
    def graph(self) -> GraphIndex:
        """The graph of the known, distinct edges (built once)."""
        return GraphIndex.build(self.node_ids, self.graph_edges)


def read_leniently(raw: Mapping[str, Any]) -> RawView:
    workflow_id = raw.get("id")
    if isinstance(workflow_id, int | float) and not isinstance(workflow_id, bool):
        workflow_id = str(workflow_id)
    raw_nodes = raw.get("nodes")
    node_ids: list[str] = []
    nodes: dict[str, Mapping[str, Any]] = {}
    if isinstance(raw_nodes, Mapping):
        for key, value in raw_nodes.items():
            node_ids.append(str(key))
            nodes[str(key)] = value if isinstance(value, Mapping) else {}
    edges: list[RawEdge] = []
    raw_edges = raw.get("edges")
    if isinstance(raw_edges, list):
        for index, edge in enumerate(raw_edges):
            if isinstance(edge, Mapping):
                source, target = edge.get("source"), edge.get("target")
                edges.append(
                    RawEdge(
                        index,
                        source if isinstance(source, str) else None,
                        target if isinstance(target, str) else None,
                    )
                )
    return RawView(workflow_id if isinstance(workflow_id, str) else None, node_ids, nodes, edges)


# ---- ids and names ---------------------------------------------------------------------------------
_ID_HINT = "use 1 to 255 characters among letters, digits, '_' and '-'"


def check_ids(view: RawView) -> list[SpecProblem]:
    problems = []
    if view.workflow_id is not None and not names.ID_RE.match(view.workflow_id):
        problems.append(SpecProblem("id", f"workflow id {view.workflow_id!r} is not allowed: {_ID_HINT}", "bad_id"))
    for node_id in view.node_ids:
        if not names.ID_RE.match(node_id):
            problems.append(
                SpecProblem(f"nodes.{node_id}", f"node id {node_id!r} is not allowed: {_ID_HINT}", "bad_id", node_id)
            )
    return problems


def check_name_collisions(view: RawView) -> list[SpecProblem]:
    by_name: dict[str, list[str]] = {}
    for node_id in view.node_ids:
        if names.ID_RE.match(node_id):
            by_name.setdefault(names.dagster_name(node_id), []).append(node_id)
    return [
        SpecProblem(
            f"nodes.{ids[1]}",
            f"node ids {', '.join(map(repr, ids))} all map to the Dagster name {name!r}: rename one of them",
            "name_collision",
            ids[1],
        )
        for name, ids in by_name.items()
        if len(ids) > 1
    ]


# ---- edges, cycles, dependencies -------------------------------------------------------------------
def check_edges(view: RawView) -> list[SpecProblem]:
    known = set(view.node_ids)
    problems: list[SpecProblem] = []
    seen: dict[tuple[str, str], int] = {}
    for edge in view.edges:
        loc, label = f"edges[{edge.index}]", f"edges[{edge.index}] ({edge.source} -> {edge.target})"
        for end, value in (("source", edge.source), ("target", edge.target)):
            if value is not None and value not in known:
                problems.append(
                    SpecProblem(
                        f"{loc}.{end}",
                        f"{label} {'starts at' if end == 'source' else 'targets'} unknown node {value!r}: "
                        f"add a node with that id or fix the edge {end}",
                        "unknown_edge_node",
                    )
                )
        if edge.source is None or edge.target is None:
            continue
        if edge.source == edge.target:
            problems.append(
                SpecProblem(
                    loc,
                    f"{label} goes from node {edge.source!r} to itself: remove it",
                    "self_loop",
                    edge.source if edge.source in known else None,
                )
            )
        key = (edge.source, edge.target)
        if key in seen:
            problems.append(
                SpecProblem(loc, f"{label} repeats edges[{seen[key]}]: remove one of them", "duplicate_edge")
            )
        else:
            seen[key] = edge.index
    return problems


def check_cycles(graph: GraphIndex) -> list[SpecProblem]:
    """One ``cycle`` problem per cycle (strongly connected component), naming a path around it."""
    return [
        SpecProblem(
            "edges",
            f"the graph has a cycle: {' -> '.join(path)}: remove or reverse one of these edges",
            "cycle",
            path[0],
        )
        for path in graph.cycle_paths()
    ]


def check_dependencies(view: RawView) -> list[SpecProblem]:
    """A node's ``dependencies``, when given, must be the sources of its incoming edges."""
    incoming = view.sources_by_target
    problems = []
    for node_id, node in view.nodes.items():
        declared = node.get("dependencies")
        if not isinstance(declared, list) or not all(isinstance(d, str) for d in declared):
            continue
        from_edges = incoming.get(node_id, [])
        if set(declared) == set(from_edges):
            continue
        unknown = [d for d in declared if d not in view.nodes]
        extra = f" ({', '.join(map(repr, unknown))} is not a node)" if unknown else ""
        problems.append(
            SpecProblem(
                f"nodes.{node_id}.dependencies",
                f"node {node_id!r} lists dependencies {sorted(set(declared))}{extra} but its incoming edges "
                f"come from {sorted(set(from_edges))}: make them agree, or drop 'dependencies' "
                "(the edges define the graph)",
                "dependency_mismatch",
                node_id,
            )
        )
    return problems
