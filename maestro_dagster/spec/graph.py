"""The graph of a raw definition, built once per validation: adjacency, cycles, order, depth and ancestry.

``GraphIndex.build`` reads the distinct, known edges of a ``RawView`` once. The topological order comes from
the standard library (``graphlib.TopologicalSorter``); only when it reports a cycle are the strongly
connected components computed (Tarjan's algorithm, iterative), each cycle then being one component, and the
order is that of the condensed graph (components as single nodes), again by ``graphlib``. On that order:

- the longest path (in nodes), checked against ``max_depth`` when the graph has no cycle;
- ancestry for conditions, only for the nodes conditions read: a Python int bitset per component, OR-ed in
  topological order, so "does ``x`` run before ``y``" is one bit test (linear in nodes + edges, times the
  number of read nodes / 64).

Nothing here recurses or raises for bad input; the cycle *problems* are reported by :mod:`.checks`.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from maestro_dagster.policy import DefinitionLimits
from maestro_dagster.spec.limits import limit_hint, raise_hint
from maestro_dagster.spec.problems import SpecProblem


def strongly_connected(nodes: Sequence[str], children: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; the components come out in reverse topological order."""
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


def cycle_through(start: str, members: set[str], children: Mapping[str, list[str]]) -> list[str]:
    """The shortest cycle from ``start`` back to it inside one strongly connected component (BFS)."""
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


def _ordered(parents: list[list[int]]) -> list[int]:
    """The indices of ``parents`` (index -> its parents' indices, acyclic) in topological order (``graphlib``)."""
    return list(graphlib.TopologicalSorter(dict(enumerate(parents))).static_order())


@dataclass
class GraphIndex:
    """Adjacency and components of the graph; ``components`` are in topological order."""

    nodes: list[str]
    children: dict[str, list[str]]
    components: list[list[str]]
    component_of: dict[str, int]
    component_parents: list[list[int]]
    cycles: list[list[str]] = field(default_factory=list)

    @classmethod
    def build(cls, nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> GraphIndex:
        """``edges``: distinct (source, target) pairs between known nodes, no self loops."""
        nodes = list(dict.fromkeys(nodes))
        children: dict[str, list[str]] = {}
        parents: dict[str, list[str]] = {node: [] for node in nodes}
        for source, target in edges:
            children.setdefault(source, []).append(target)
            parents[target].append(source)
        try:
            order = list(graphlib.TopologicalSorter(parents).static_order())
        except graphlib.CycleError:
            return cls._condensed(nodes, children, parents)
        component_of = {node: i for i, node in enumerate(order)}
        component_parents = [[component_of[p] for p in parents[node]] for node in order]
        return cls(nodes, children, [[node] for node in order], component_of, component_parents)

    @classmethod
    def _condensed(cls, nodes: list[str], children: dict[str, list[str]], parents: dict[str, list[str]]) -> GraphIndex:
        found = strongly_connected(nodes, children)
        first_of = {node: i for i, component in enumerate(found) for node in component}
        found_parents: list[dict[int, None]] = [{} for _ in found]  # ordered sets
        for target, sources in parents.items():
            for source in sources:
                if first_of[source] != first_of[target]:
                    found_parents[first_of[target]][first_of[source]] = None
        order = _ordered([list(p) for p in found_parents])
        position = {old: new for new, old in enumerate(order)}
        components = [found[old] for old in order]
        component_parents = [[position[p] for p in found_parents[old]] for old in order]
        component_of = {node: position[first_of[node]] for node in nodes}
        written = {node: i for i, node in enumerate(nodes)}
        cycles = sorted((c for c in found if len(c) > 1), key=lambda c: min(written[n] for n in c))
        return cls(nodes, children, components, component_of, component_parents, cycles)

    def cycle_paths(self) -> list[list[str]]:
        """One path per cycle, starting and ending at its first-written node: ``[a, b, c, a]``."""
        written = {node: i for i, node in enumerate(self.nodes)}
        paths = []
        for component in self.cycles:
            start = min(component, key=written.__getitem__)
            paths.append(cycle_through(start, set(component), self.children))
        return paths

    def longest_path(self) -> list[str]:
        """The nodes of one longest path (meaningful when there is no cycle); [] for an empty graph."""
        if not self.components:
            return []
        depth = [0] * len(self.components)
        best_parent: list[int | None] = [None] * len(self.components)
        for i, parents in enumerate(self.component_parents):  # topological order: parents come first
            if parents:
                best = max(parents, key=depth.__getitem__)
                best_parent[i], depth[i] = best, depth[best] + len(self.components[i])
            else:
                depth[i] = len(self.components[i])
        end: int | None = max(range(len(depth)), key=depth.__getitem__)
        path: list[str] = []
        while end is not None:
            path.append(self.components[end][0])
            end = best_parent[end]
        return path[::-1]

    def ancestry(self, wanted: Iterable[str]) -> Ancestry:
        """What runs before what, for the ``wanted`` nodes (those conditions read) only."""
        bit = {node: 1 << i for i, node in enumerate(dict.fromkeys(w for w in wanted if w in self.component_of))}
        own = [0] * len(self.components)
        for node, mask in bit.items():
            own[self.component_of[node]] |= mask
        before = [0] * len(self.components)
        for i, parents in enumerate(self.component_parents):
            acc = 0
            for parent in parents:
                acc |= before[parent] | own[parent]
            before[i] = acc | (own[i] if len(self.components[i]) > 1 else 0)  # a cycle reaches itself
        return Ancestry(bit, before, self.component_of)


@dataclass(frozen=True)
class Ancestry:
    bit: dict[str, int]
    before: list[int]
    component_of: dict[str, int]

    def runs_before(self, ancestor: str, node: str) -> bool:
        """True when an edge path leads from ``ancestor`` to ``node`` (``ancestor`` must be a wanted node)."""
        mask = self.bit.get(ancestor, 0)
        component = self.component_of.get(node)
        return bool(mask) and component is not None and bool(self.before[component] & mask)


def check_depth(graph: GraphIndex, limits: DefinitionLimits) -> list[SpecProblem]:
    """``too_deep`` when the longest path has more than ``max_depth`` nodes (skipped when there is a cycle)."""
    if graph.cycles:
        return []
    path = graph.longest_path()
    if len(path) <= limits.max_depth:
        return []
    return [
        SpecProblem(
            "edges",
            f"the longest path of the graph, from {path[0]!r} to {path[-1]!r}, has {len(path)} nodes, more than the "
            f"limit {limit_hint('max_depth', limits)}: run more of these nodes side by side, or split the "
            f"workflow, {raise_hint('max_depth')}",
            "too_deep",
            path[-1],
        )
    ]
