"""What one op hands to its downstream ops: the node's own result plus every ancestor's outputs.

Dagster passes it through the job's IO manager: the code location's jobs store it as JSON in Maestro's database
(``resources/outputs.py``, encoded by ``output_codec.py``), so every executor, on any machine, reads it. Carrying
ancestors' outputs lets a node receive ``all_outputs`` (every ancestor's output, as in the original) without adding
edges to the graph.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class NodeResult(BaseModel):
    node_id: str
    status: Literal["completed", "skipped"]
    output: dict[str, Any] | None = None
    artifacts: list[str] = Field(default_factory=list)
    all_outputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    all_artifacts: dict[str, list[str]] = Field(default_factory=dict)


def merge_upstream(results: list[NodeResult]) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """Every ancestor's outputs and artifacts (skipped nodes have none), from the direct upstream results."""
    outputs: dict[str, dict[str, Any]] = {}
    artifacts: dict[str, list[str]] = {}
    for result in results:
        outputs.update(result.all_outputs)
        artifacts.update(result.all_artifacts)
    return outputs, artifacts
