"""Dynamic fan-out: a node with ``for_each:`` runs once per item of a list, on Dagster's dynamic outputs.

A ``for_each`` node ``x`` is two ops. The fan-out op (invoked as ``x__for_each``, ``names.for_each_alias``) takes
``x``'s upstream results, evaluates the expression (the condition language, ``compiler.conditions.
evaluate_items``) and yields one ``DynamicOutput`` per item, keyed by the item's index, plus a plain ``result``
whose metadata the mirror reads as the node state ``x`` (``{"count", "items"}``). The node's own op is mapped over
those outputs: step ``x[3]`` runs item 3 with ``node_input["item"]`` and ``node_input["item_index"]``, its own
retries and attempts (node state ``x[3]``). A node downstream of ``x`` collects the items' results
(``DynamicCollectDependencyDefinition``) and receives ``x``'s output as ``{"items": [each item's output, in
order]}`` (``None`` for an item whose condition was false). Dagster's re-execution from failure re-runs only the
failed items and what is downstream of them; the other items' outputs are loaded from the runs that made them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from dagster import (
    DependencyDefinition,
    DynamicOut,
    DynamicOutput,
    In,
    MetadataValue,
    OpDefinition,
    Out,
    Output,
)
from dagster._core.definitions.dependency import DynamicCollectDependencyDefinition  # what .collect() builds

from maestro_dagster.compiler.conditions import evaluate_items
from maestro_dagster.compiler.envelope import NodeResult, merge_upstream
from maestro_dagster.compiler.node import OUTPUT_NAME, celery_tags
from maestro_dagster.compiler.runtime import RESOURCE_KEY, TAG_NODE_ID, NodeRuntime
from maestro_dagster.names import dagster_name, for_each_alias, op_name
from maestro_dagster.policy import DefinitionLimits
from maestro_dagster.spec import WorkflowSpec
from maestro_dagster.spec.models import MAX_FOR_EACH_ITEMS
from maestro_dagster.tags import META_INPUTS, META_OUTPUT, META_STATUS

ITEM_OUTPUT = "item"  # the fan-out op's dynamic output
ITEM_INPUT = "item"  # the mapped op's one input


def is_for_each(spec: WorkflowSpec, node_id: str) -> bool:
    node = spec.nodes.get(node_id)
    return node is not None and node.for_each is not None


def upstream_dependency(spec: WorkflowSpec, up: str) -> DependencyDefinition | DynamicCollectDependencyDefinition:
    """How an op depends on its upstream node ``up``: its result, or all its items' results when ``up`` fans out."""
    if is_for_each(spec, up):
        return DynamicCollectDependencyDefinition(dagster_name(up), OUTPUT_NAME)
    return DependencyDefinition(dagster_name(up), OUTPUT_NAME)


def upstream_in(spec: WorkflowSpec, up: str) -> In:
    if is_for_each(spec, up):
        return In(list, description=f"the results of node {up!r}, one per item")
    return In(NodeResult, description=f"result of node {up!r}")


def folded(node_id: str, value: NodeResult | list[NodeResult]) -> NodeResult:
    """An upstream result as a node reads it: a collected ``for_each`` node's items become one result whose output
    is ``{"items": [...]}`` (the items' artifacts together)."""
    if isinstance(value, NodeResult):
        return value
    outputs = [r.output if r.status == "completed" else None for r in value]
    artifacts = [path for r in value for path in r.artifacts]
    all_outputs, all_artifacts = merge_upstream(value)
    output = {"items": outputs}
    return NodeResult(
        node_id=node_id,
        status="completed",
        output=output,
        artifacts=artifacts,
        all_outputs={**all_outputs, node_id: output},
        all_artifacts={**all_artifacts, node_id: artifacts},
    )


def folded_inputs(spec: WorkflowSpec, node_id: str, inputs: Mapping[str, Any]) -> dict[str, NodeResult]:
    """An op's inputs (by Dagster input name) as upstream results by node id."""
    by_name = {dagster_name(up): up for up in spec.upstream(node_id)}
    return {by_name[name]: folded(by_name[name], value) for name, value in inputs.items()}


def make_fanout_op(spec: WorkflowSpec, node_id: str) -> OpDefinition:
    """The op that evaluates ``node_id``'s ``for_each`` and yields one dynamic output per item."""
    node = spec.nodes[node_id]
    expression = node.for_each
    assert expression is not None

    def compute(context, inputs: Mapping[str, Any]) -> Iterator[Output | DynamicOutput]:  # type: ignore[no-untyped-def]
        runtime: NodeRuntime = getattr(context.resources, RESOURCE_KEY)
        upstream = folded_inputs(spec, node_id, inputs)
        all_outputs, _ = merge_upstream(list(upstream.values()))
        items = evaluate_items(
            expression,
            all_outputs,
            runtime.initial_context,
            max_items=MAX_FOR_EACH_ITEMS,
            timeout_seconds=spec.effective_timeout(node_id),
            limits=DefinitionLimits.from_settings(runtime.settings),
        )
        context.log.info(f"node {node_id!r}: for_each gave {len(items)} item(s)")
        summary = {"count": len(items), "items": items}
        inputs_summary = {"upstream": {up: res.status for up, res in upstream.items()}, "for_each": expression}
        yield Output(
            None,
            OUTPUT_NAME,
            metadata={
                META_STATUS: "completed",
                META_OUTPUT: MetadataValue.json(summary),
                META_INPUTS: MetadataValue.json(inputs_summary),
            },
        )
        for index, item in enumerate(items):
            fan = {"item": item, "index": index, "upstream": upstream}
            yield DynamicOutput(fan, mapping_key=str(index), output_name=ITEM_OUTPUT)

    return OpDefinition(
        compute_fn=compute,
        name=f"{op_name(spec.id, node_id)}__for_each",
        ins={dagster_name(up): upstream_in(spec, up) for up in spec.upstream(node_id)},
        outs={
            OUTPUT_NAME: Out(is_required=False, description="the items (read by the mirror only)"),
            ITEM_OUTPUT: DynamicOut(description=f"one per item of node {node_id!r}'s for_each"),
        },
        description=f"The items of node `{node_id}`: for_each {expression}",
        required_resource_keys={RESOURCE_KEY},
        tags={TAG_NODE_ID: node_id, "maestro/for_each": "items", **celery_tags(spec, node_id)},
    )


def fan_alias(node_id: str) -> str:
    return for_each_alias(dagster_name(node_id))
