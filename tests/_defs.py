"""The one builder of the workflow definitions the tests write: raw dicts, as a definition file or the API holds them.

``definition(id, nodes, edges, **fields)`` is the document, its edges given as ``(source, target)`` pairs (``chain``
gives those of a chain); ``node`` and ``echo`` are nodes of the example executors (``maestro_examples.nodes``);
``linear`` and ``fan_out`` are the two usual shapes made of them; ``etl``, ``flaky`` and ``nap`` the example
workflows the API and end-to-end stacks sync. Test support modules build on these, never on copies of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

EXAMPLES = "maestro_examples.nodes"


def node(executor: str = "echo", **fields: Any) -> dict[str, Any]:
    """A node of the example executor ``maestro_examples.nodes:<executor>`` with these other fields."""
    return {"executor": f"{EXAMPLES}:{executor}", **fields}


def echo(**config: Any) -> dict[str, Any]:
    """An echo node with this config (it returns ``config["output"]``)."""
    return node("echo", config=config)


def chain(*ids: str) -> list[tuple[str, str]]:
    """The edges of a chain through ``ids``, in order."""
    return list(pairwise(ids))


def definition(
    workflow_id: str, nodes: Mapping[str, Any], edges: Iterable[tuple[str, str]] = (), **fields: Any
) -> dict[str, Any]:
    """A definition: ``id``, ``nodes``, ``edges`` (from the pairs) and any other top-level fields."""
    return {"id": workflow_id, "nodes": dict(nodes), "edges": [{"source": s, "target": t} for s, t in edges], **fields}


def linear(workflow_id: str, count: int, **node_fields: Any) -> dict[str, Any]:
    """``n1 -> n2 -> ... -> n<count>``, each ``node(**node_fields)``."""
    ids = [f"n{i}" for i in range(1, count + 1)]
    return definition(workflow_id, {i: node(**node_fields) for i in ids}, chain(*ids))


def fan_out(workflow_id: str, width: int, **node_fields: Any) -> dict[str, Any]:
    """``src`` to ``m1`` .. ``m<width>`` to ``sink``, each ``node(**node_fields)``."""
    middle = [f"m{i}" for i in range(1, width + 1)]
    nodes = {n: node(**node_fields) for n in ("src", *middle, "sink")}
    return definition(workflow_id, nodes, [("src", m) for m in middle] + [(m, "sink") for m in middle])


# ---- the example workflows the API and end-to-end stacks sync (each under its own id) ----------------------------


def etl(workflow_id: str, report_path: Path, **fields: Any) -> dict[str, Any]:
    """``extract -> transform -> report``: two echoes, then ``write_file`` of ``ok`` to ``report_path``."""
    nodes = {
        "extract": node("echo", config={"output": {"rows": 3}}),
        "transform": node("echo"),
        "report": node("write_file", config={"path": str(report_path), "content": "ok"}),
    }
    return definition(workflow_id, nodes, chain(*nodes), **fields)


def flaky(workflow_id: str, counter_file: Path) -> dict[str, Any]:
    """``prepare -> flaky -> finish``: ``flaky`` fails its first attempt (counted in ``counter_file``)."""
    nodes = {
        "prepare": node("echo"),
        "flaky": node("flaky", config={"counter_file": str(counter_file), "succeed_on_attempt": 2}),
        "finish": node("echo"),
    }
    return definition(workflow_id, nodes, chain(*nodes))


def nap(workflow_id: str, seconds: float) -> dict[str, Any]:
    """``nap -> after``: a ``sleep`` of ``seconds``, then an echo."""
    nodes = {"nap": node("sleep", config={"seconds": seconds}), "after": node("echo")}
    return definition(workflow_id, nodes, chain(*nodes))
