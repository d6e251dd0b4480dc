"""The ``noop`` built-in executor: does nothing and returns ``{"status": "completed"}``.

``config.output`` (a mapping) is merged into the result, so a no-op node can stand in for real work in a
test or a demo (e.g. ``output: {needs_backend: true, quality_score: 0.9}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from maestro_dagster.errors import ExecutorError
from maestro_dagster.executors.base import ExecutorContext, NodeInput, NodeOutput, node_config


def noop_executor(node_input: NodeInput, ctx: ExecutorContext) -> NodeOutput:
    """Return ``{"status": "completed"}`` updated with ``config.output``."""
    extra: Any = node_config(node_input).get("output", {})
    if extra is None:
        extra = {}
    if not isinstance(extra, Mapping):
        raise ExecutorError(
            f"Node '{ctx.node_id}': noop config.output must be a mapping, got {type(extra).__name__}.",
            details={"node_id": ctx.node_id},
        )
    return {"status": "completed", **dict(extra)}
