"""The size limits of a definition (``DefinitionLimits``), checked before anything expensive or recursive.

This module owns the checks of the limits that are about the *document* rather than the graph or the
conditions: the nesting depth of mappings/lists, the size of the whole document and of one node's config
(compact JSON, what is stored), the number of nodes and edges, and the values JSON cannot store (NaN,
Infinity, a value that contains itself through a recursive YAML alias). The graph's longest path is
checked by :mod:`.graph`, a condition's length and depth by :mod:`.conditions`, the YAML alias budget by
:mod:`.loader`; every message names the ``MAESTRO_MAX_*`` setting to raise (``policy.LIMIT_SETTINGS``).

``check_document`` walks the document iteratively (no recursion a deep document could exhaust), stops as
soon as a limit is exceeded, and never raises for any input. Once it has passed, the document nests at most
``max_nesting`` deep and holds no integer too large to print, so later (recursive) code is safe on it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from maestro_dagster.policy import LIMIT_SETTINGS, DefinitionLimits
from maestro_dagster.spec.problems import SpecProblem

_ENCODE_STRING = json.encoder.encode_basestring  # the JSON text of a string, quotes and escapes included
#: Larger integers (in a value or a key) are refused: Python will not print one of more than 4,300 digits.
MAX_INT_BITS = 10_000
_CONTAINERS = (Mapping, list, tuple, set, frozenset)
_SCALARS = frozenset({int, float, bool, type(None)})


def limit_hint(limit: str, limits: DefinitionLimits) -> str:
    """``MAESTRO_MAX_NODES=1000``: the setting behind a limit and its current value."""
    return f"{LIMIT_SETTINGS[limit]}={getattr(limits, limit)}"


def raise_hint(limit: str) -> str:
    """How to get past a limit: the words every limit problem ends with."""
    return f"or have an operator raise {LIMIT_SETTINGS[limit]} where the API and the code location run"


def format_location(loc: Sequence[str | int]) -> str:
    """``('edges', 3, 'target')`` -> ``edges[3].target`` (the second part of ``nodes.<id>`` stays a name)."""
    out = ""
    for position, part in enumerate(loc):
        if part == "[key]":
            continue
        if isinstance(part, int) and not (position == 1 and loc[0] == "nodes"):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def node_of(loc: Sequence[str | int]) -> str | None:
    """The node id of a location under ``nodes``."""
    return str(loc[1]) if len(loc) > 1 and loc[0] == "nodes" else None


@dataclass
class DocumentCheck:
    """What :func:`check_document` found. ``blocking``: stop here, nothing else may look at the document."""

    problems: list[SpecProblem] = field(default_factory=list)
    blocking: bool = False
    size: int = 0


def _path(chain: tuple[Any, ...] | None) -> tuple[str | int, ...]:
    """A location from the walk's linked list ``(parent_chain, key)``."""
    parts: list[str | int] = []
    while chain is not None:
        chain, key = chain
        parts.append(key if isinstance(key, int) else str(key))
    return tuple(reversed(parts))


def _scalar_size(value: Any) -> int:
    """Characters of a scalar's compact JSON text (a cheap, close estimate for what JSON cannot hold)."""
    if value is None or value is True:
        return 4
    if value is False:
        return 5
    if isinstance(value, str):
        return len(_ENCODE_STRING(value))
    if isinstance(value, int):
        bits = value.bit_length()
        return len(str(value)) if bits < 64 else bits * 30103 // 100000 + 2
    if isinstance(value, float):
        return len(repr(value))
    return len(str(value)) + 2  # dates, bytes... (pydantic or the storage check decides whether they may stay)


def check_document(raw: Any, limits: DefinitionLimits) -> DocumentCheck:
    """Nesting depth, compact-JSON size, NaN/Infinity, huge integers and self-containing values of ``raw``.

    One iterative walk; the top-level mapping is at depth 1. Exceeding ``max_nesting`` or
    ``max_definition_bytes``, a value containing itself or an integer too large to print is blocking (the
    walk stops there); NaN/Infinity are reported and the walk goes on.
    """
    result = DocumentCheck()
    leave = object()  # marks leaving the container on top of ``on_path``
    stack: list[tuple[Any, int, Any]] = [(raw, 1, None)]  # containers to visit: (value, depth, chain)
    on_path: list[int] = []
    active: set[int] = set()
    size = 0
    while stack:
        value, depth, chain = stack.pop()
        if value is leave:
            active.discard(on_path.pop())
            continue
        if id(value) in active:
            result.problems.append(_recursive(_path(chain)))
            break
        if depth > limits.max_nesting:
            result.problems.append(_too_deep(_path(chain), limits))
            break
        active.add(id(value))
        on_path.append(id(value))
        stack.append((leave, 0, None))
        is_mapping = isinstance(value, Mapping)
        pairs = list(value.items()) if is_mapping else list(enumerate(value))
        size += 2 + len(pairs)  # brackets and separators
        pending = []
        problem = None
        for key, item in pairs:
            if is_mapping:
                if type(key) is str:
                    size += len(_ENCODE_STRING(key)) + 1
                elif isinstance(key, int) and key.bit_length() > MAX_INT_BITS:
                    problem = _huge_int(_path(chain))
                    break
                else:
                    size += _scalar_size(key) + 3
            kind = type(item)
            if kind is str:
                size += len(_ENCODE_STRING(item))
            elif kind is dict or kind is list or (kind not in _SCALARS and isinstance(item, _CONTAINERS)):
                pending.append((item, depth + 1, (chain, key)))
            elif isinstance(item, int) and item.bit_length() > MAX_INT_BITS:
                problem = _huge_int(_path((chain, key)))
                break
            else:
                size += _scalar_size(item)
                if kind is float and not math.isfinite(item):
                    result.problems.append(_not_finite(_path((chain, key)), item))
        if problem is None and size > limits.max_definition_bytes:
            problem = SpecProblem(
                "",
                f"the definition is more than {limits.max_definition_bytes} characters as JSON, more than the "
                f"limit {limit_hint('max_definition_bytes', limits)}: split it into smaller workflows, "
                f"{raise_hint('max_definition_bytes')}",
                "too_large",
            )
        if problem is not None:
            result.problems.append(problem)
            break
        stack.extend(reversed(pending))
    else:
        result.size = size
        return result
    result.blocking, result.size = True, size  # the walk stopped at a limit
    return result


def _recursive(loc: tuple[str | int, ...]) -> SpecProblem:
    where = format_location(loc) or "the definition"
    return SpecProblem(
        format_location(loc),
        f"{where} contains itself (a recursive YAML alias): write the value out",
        "schema",
        node_of(loc),
    )


def _not_finite(loc: tuple[str | int, ...], value: float) -> SpecProblem:
    return SpecProblem(
        format_location(loc),
        f"{format_location(loc)} is {value}, which JSON cannot store: use a finite number or a string",
        "schema",
        node_of(loc),
    )


def _huge_int(loc: tuple[str | int, ...]) -> SpecProblem:
    where = format_location(loc) or "the definition"
    return SpecProblem(
        format_location(loc),
        f"{where} holds an integer of more than {MAX_INT_BITS} bits (about 3,000 digits), which cannot be stored: "
        "write it as a string",
        "schema",
        node_of(loc),
    )


def _too_deep(loc: tuple[str | int, ...], limits: DefinitionLimits) -> SpecProblem:
    where = format_location(loc) or "the definition"
    return SpecProblem(
        format_location(loc),
        f"{where} nests mappings/lists more than {limits.max_nesting} levels deep "
        f"({limit_hint('max_nesting', limits)}, counting the top level as 1): flatten that value, "
        f"{raise_hint('max_nesting')}",
        "too_deep",
        node_of(loc),
    )


def nesting_problem(value: Any, limits: DefinitionLimits) -> SpecProblem | None:
    """The ``too_deep`` problem of a parsed value nesting deeper than ``max_nesting`` (iterative), else None."""
    stack: list[tuple[Any, int, Any]] = [(value, 1, None)]
    while stack:
        item, depth, chain = stack.pop()
        if isinstance(item, Mapping | list):
            if depth > limits.max_nesting:
                return _too_deep(_path(chain), limits)
            children = item.items() if isinstance(item, Mapping) else enumerate(item)
            stack.extend((child, depth + 1, (chain, key)) for key, child in children)
    return None


def check_counts(raw: Mapping[str, Any], limits: DefinitionLimits) -> list[SpecProblem]:
    """``too_large`` when there are more nodes or edges than the limits allow (checked before the graph)."""
    problems = []
    for key, limit, what in (("nodes", "max_nodes", "nodes"), ("edges", "max_edges", "edges")):
        value = raw.get(key)
        count = len(value) if isinstance(value, Mapping | list) else 0
        if count > getattr(limits, limit):
            problems.append(
                SpecProblem(
                    key,
                    f"the definition has {count} {what}, more than the limit {limit_hint(limit, limits)}: split it "
                    f"into smaller workflows (a workflow_completed sensor can chain them), {raise_hint(limit)}",
                    "too_large",
                )
            )
    return problems


def check_config_sizes(nodes: Mapping[str, Mapping[str, Any]], limits: DefinitionLimits) -> list[SpecProblem]:
    """``too_large`` for every node whose ``config`` is bigger than ``max_config_bytes`` as compact JSON (UTF-8)."""
    problems = []
    for node_id, node in nodes.items():
        config = node.get("config")
        if not isinstance(config, Mapping) or not config:
            continue
        try:
            text = json.dumps(config, ensure_ascii=False, separators=(",", ":"), default=str)
        except (TypeError, ValueError, RecursionError):
            continue  # not storable: the schema and storage checks say so
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > limits.max_config_bytes:
            problems.append(
                SpecProblem(
                    f"nodes.{node_id}.config",
                    f"node {node_id!r}: config is {size} bytes as JSON, more than the limit "
                    f"{limit_hint('max_config_bytes', limits)}: keep large data in a file or a table and pass "
                    f"its path or name, {raise_hint('max_config_bytes')}",
                    "too_large",
                    node_id,
                )
            )
    return problems
