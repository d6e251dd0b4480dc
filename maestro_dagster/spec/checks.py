"""Graph checks that run on a lenient reading of the raw definition (``RawView``).

They run even when pydantic rejected some field, so one bad node never hides the graph's other problems:
ids, Dagster name collisions, edges (unknown ends, self loops, duplicates), cycles (with their path) and
``dependencies`` against edges. Node-level checks (executors, config, conditions) are in
:mod:`.node_checks`. Each check returns :class:`SpecProblem` objects and never raises on bad input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from maestro_dagster import names
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

    @property
    def graph_edges(self) -> list[tuple[str, str]]:
        """Distinct edges whose ends both exist, without self loops, in written order."""
        known = set(self.node_ids)
        pairs = ((e.source, e.target) for e in self.edges)
        return [(s, t) for s, t in dict.fromkeys(pairs) if s in known and t in known and s != t and s and t]


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


def _strongly_connected(nodes: Sequence[str], children: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, child_pos = work.pop()
            if child_pos == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            kids = children.get(node, [])
            if child_pos < len(kids):
                work.append((node, child_pos + 1))
                child = kids[child_pos]
                if child not in index:
                    work.append((child, 0))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return components


def _cycle_through(start: str, members: set[str], children: Mapping[str, list[str]]) -> list[str]:
    """The shortest cycle from ``start`` back to it inside one strongly connected component."""
    parents: dict[str, str] = {}
    queue = [start]
    for node in queue:
        for child in children.get(node, []):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return [*reversed(path), start]
            if child in members and child not in parents:
                parents[child] = node
                queue.append(child)
    return [start, start]  # pragma: no cover - unreachable for a real component


def check_cycles(view: RawView) -> list[SpecProblem]:
    children: dict[str, list[str]] = {}
    for source, target in view.graph_edges:
        children.setdefault(source, []).append(target)
    order = {node_id: i for i, node_id in enumerate(view.node_ids)}
    problems = []
    for component in _strongly_connected(view.node_ids, children):
        if len(component) < 2:
            continue
        start = min(component, key=order.__getitem__)
        path = _cycle_through(start, set(component), children)
        problems.append(
            SpecProblem(
                "edges",
                f"the graph has a cycle: {' -> '.join(path)}: remove or reverse one of these edges",
                "cycle",
                start,
            )
        )
    return problems


def check_dependencies(view: RawView) -> list[SpecProblem]:
    problems = []
    for node_id, node in view.nodes.items():
        declared = node.get("dependencies")
        if not isinstance(declared, list) or not all(isinstance(d, str) for d in declared):
            continue
        from_edges = list(dict.fromkeys(e.source for e in view.edges if e.target == node_id and e.source))
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
