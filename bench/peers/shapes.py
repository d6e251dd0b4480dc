"""The graphs every variant of bench/bench_peers.py runs, and the one trivial node function they all call.

Standard library only: each peer's runner imports this file from its own virtual environment. A shape is its node
ids in a topological order and, for each node, the nodes it is fed by (in that order).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    name: str
    order: tuple[str, ...]  # node ids, each after every node it is fed by
    upstream: dict[str, tuple[str, ...]]

    @property
    def nodes(self) -> int:
        return len(self.order)

    def edges(self) -> list[tuple[str, str]]:
        return [(up, node) for node in self.order for up in self.upstream[node]]


def linear(n: int) -> Shape:
    ids = tuple(f"n{i:03d}" for i in range(n))
    upstream = {ids[0]: ()} | {b: (a,) for a, b in itertools.pairwise(ids)}
    return Shape(f"linear-{n}", ids, upstream)


def fanout(n: int) -> Shape:
    """1 -> n-2 -> 1: the last node joins n-2 inputs."""
    middle = tuple(f"m{i:03d}" for i in range(n - 2))
    upstream = {"start": ()} | {m: ("start",) for m in middle} | {"end": middle}
    return Shape(f"fanout-{n}", ("start", *middle, "end"), upstream)


def layered(layers: int, width: int) -> Shape:
    """``layers`` layers of ``width`` nodes; node j of a layer is fed by nodes j and j+1 (mod width) of the one
    before."""
    grid = [[f"l{k:02d}_{j:02d}" for j in range(width)] for k in range(layers)]
    upstream: dict[str, tuple[str, ...]] = {node: () for node in grid[0]}
    for before, layer in itertools.pairwise(grid):
        for j, node in enumerate(layer):
            upstream[node] = (before[j], before[(j + 1) % width])
    return Shape(f"layered-{layers * width}", tuple(itertools.chain.from_iterable(grid)), upstream)


FULL = ("linear-20", "linear-100", "fanout-100", "layered-500")
QUICK = ("linear-20", "fanout-20", "layered-50")


def shape(name: str) -> Shape:
    """``linear-N``, ``fanout-N`` (1 -> N-2 -> 1) or ``layered-N`` (10 layers of N/10: layered-500 is 10 x 50)."""
    kind, _, size = name.partition("-")
    n = int(size)
    if kind == "linear":
        return linear(n)
    if kind == "fanout":
        return fanout(n)
    if kind == "layered":
        return layered(10, n // 10)
    raise ValueError(f"unknown shape {name!r}: use linear-N, fanout-N or layered-N")


def node(*upstream: object) -> dict[str, str]:
    """The trivial node every peer runs: what the product's ``noop`` executor returns."""
    return {"status": "completed"}
