"""Compile a workflow definition into a Dagster job (pure: no database, no network).

One op per node, named ``<job>__<node>`` (unique across the code location), aliased by the node's Dagster
name and described by the node's name, description, type and executor (``op_description``: the Dagster UI's
graph shows the name); one dependency per edge (the target receives the source's ``NodeResult``). The job
takes a single small run config, ``initial_context``, mapped onto the ``maestro`` resource, so the launchpad
shows one form; its declared ``inputs:`` are typed fields of it (``input_config``), checked and completed with
their defaults by ``spec.inputs.apply_inputs`` in the mapping, whoever launches. Retry policies map to Dagster
``RetryPolicy`` (``max_retries = max_attempts - 1``; exponential backoff waits ``(2^n - 1) * delay`` before
retry n). Failure semantics are Dagster's: independent branches go on, nodes downstream of a failure never start.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from dagster import (
    Backoff,
    ConfigMapping,
    DependencyDefinition,
    ExecutorDefinition,
    Field,
    GraphDefinition,
    In,
    JobDefinition,
    NodeInvocation,
    OpDefinition,
    Out,
    Output,
    Permissive,
    ResourceDefinition,
    RetryPolicy,
    multi_or_in_process_executor,
)

from maestro_dagster.compiler.envelope import NodeResult
from maestro_dagster.compiler.fanout import (
    ITEM_INPUT,
    ITEM_OUTPUT,
    fan_alias,
    folded_inputs,
    is_for_each,
    make_fanout_op,
    upstream_dependency,
    upstream_in,
)
from maestro_dagster.compiler.handlers import handler_executor, has_handlers, make_handler_op
from maestro_dagster.compiler.input_config import initial_context_field
from maestro_dagster.compiler.node import OUTPUT_NAME, celery_tags, run_node
from maestro_dagster.compiler.partitions import partitioned_config
from maestro_dagster.compiler.runtime import (
    RESOURCE_KEY,
    TAG_NODE_ID,
    TAG_WORKFLOW_ID,
    TAG_WORKFLOW_VERSION,
    plain_runtime,
)
from maestro_dagster.compiler.sla import has_sla, sla_executor
from maestro_dagster.executors import resolve_executor
from maestro_dagster.names import dagster_name, job_name, op_name
from maestro_dagster.policy import ORIGIN_REPOSITORY, ExecutorPolicy
from maestro_dagster.settings import get_settings
from maestro_dagster.spec import NodeSpec, RetryPolicySpec, WorkflowSpec
from maestro_dagster.spec.inputs import apply_inputs
from maestro_dagster.tags import TAG_CONCURRENCY_LIMIT, TAG_ON_LIMIT


def retry_policy_for(policy: RetryPolicySpec) -> RetryPolicy | None:
    """The node's retry policy as Dagster's; None when retries are off (the original needed both flags)."""
    if not policy.retries_enabled:
        return None
    return RetryPolicy(
        max_retries=policy.max_attempts - 1,
        delay=policy.retry_delay_seconds or None,
        backoff=Backoff.EXPONENTIAL if policy.exponential_backoff else None,
    )


def op_description(node_id: str, node: NodeSpec) -> str:
    """What the Dagster UI shows for the node's op: its name first (the graph shows this line), then its
    description, then its type, id and executor."""
    parts = [node.name or node_id]
    if node.description:
        parts.append(node.description)
    parts.append(f"{node.type} node `{node_id}`, executor `{node.executor_ref}`")
    return "\n\n".join(parts)


def _make_op(spec: WorkflowSpec, node_id: str, executors: ExecutorPolicy) -> OpDefinition:
    node = spec.nodes[node_id]
    resolve_executor(node.executor_ref, executors)  # refused or unknown: no job (run_node resolves again)
    ins = {dagster_name(up): upstream_in(spec, up) for up in spec.upstream(node_id)}

    # context unannotated: Dagster rejects string annotations (this module's are, by its __future__ import)
    def compute(context, inputs: Mapping[str, Any]) -> Iterator[Output]:  # type: ignore[no-untyped-def]
        results = folded_inputs(spec, node_id, inputs)
        yield from run_node(context, spec, node_id, results, executors.origin)

    if node.for_each is not None:  # one item of the fan-out (compiler/fanout.py)
        ins = {ITEM_INPUT: In(dict, description="the item, its index and the node's upstream results")}

        def compute(context, inputs: Mapping[str, Any]) -> Iterator[Output]:  # type: ignore[no-untyped-def]
            fan = inputs[ITEM_INPUT]
            extra = {"item": fan["item"], "item_index": fan["index"]}
            yield from run_node(context, spec, node_id, fan["upstream"], executors.origin, extra)

    return OpDefinition(
        compute_fn=compute,
        name=op_name(spec.id, node_id),
        ins=ins,
        outs={OUTPUT_NAME: Out(NodeResult, description="this node's result and its ancestors' outputs")},
        description=op_description(node_id, node),
        required_resource_keys={RESOURCE_KEY},
        retry_policy=retry_policy_for(spec.effective_retry(node_id)),
        tags={
            TAG_NODE_ID: node_id,
            "maestro/node_type": node.type,
            "maestro/executor": node.executor_ref,
            **celery_tags(spec, node_id),
        },
        pool=node.pool,  # Dagster op concurrency: its steps share the pool's slots across runs (MAESTRO_POOLS)
    )


def _initial_context_mapping(spec: WorkflowSpec) -> ConfigMapping:
    def to_run_config(config: dict[str, Any]) -> dict[str, Any]:
        # Every launch (API, CLI, schedule, sensor, Dagster UI): enums checked, defaults filled in (spec.inputs).
        context = apply_inputs(spec.inputs, config.get("initial_context") or {}, workflow_id=spec.id)
        run_config: dict[str, Any] = {"resources": {RESOURCE_KEY: {"config": {"initial_context": context}}}}
        for passthrough in ("execution", "loggers"):
            if config.get(passthrough):
                run_config[passthrough] = config[passthrough]
        return run_config

    return ConfigMapping(
        config_fn=to_run_config,
        config_schema={
            "initial_context": initial_context_field(spec),
            "execution": Field(Permissive(), is_required=False, description="Dagster executor config (optional)"),
            "loggers": Field(Permissive(), is_required=False, description="Dagster logger config (optional)"),
        },
        receive_processed_config_values=False,
    )


def build_job(
    spec: WorkflowSpec,
    *,
    version: int | None = None,
    runtime_resource: ResourceDefinition | None = None,
    executor_def: ExecutorDefinition | None = None,
    extra_resources: Mapping[str, Any] | None = None,
    executors: ExecutorPolicy | None = None,
) -> JobDefinition:
    """The Dagster job for a *valid* definition. ``runtime_resource`` defaults to one with no mirroring.

    Every node's executor is resolved here under ``executors`` (default: the settings' policy for a
    ``workflow_defs/`` file); a refused or unknown one raises ``ExecutorError`` and no job is built. Each
    attempt resolves it again under the run's settings for the same origin, so narrowing a setting takes
    effect on the next attempt.
    """
    name = job_name(spec.id)
    policy = executors or ExecutorPolicy.for_origin(get_settings(), ORIGIN_REPOSITORY)
    ops = {node_id: _make_op(spec, node_id, policy) for node_id in spec.node_ids}
    dependencies: dict[NodeInvocation, dict[str, Any]] = {}
    for node_id in spec.node_ids:
        alias = dagster_name(node_id)
        upstream = {dagster_name(up): upstream_dependency(spec, up) for up in spec.upstream(node_id)}
        if is_for_each(spec, node_id):  # the fan-out op takes the upstream; the node's op is mapped over its items
            ops[fan_alias(node_id)] = fanout = make_fanout_op(spec, node_id)
            dependencies[NodeInvocation(fanout.name, alias=fan_alias(node_id))] = upstream
            upstream = {ITEM_INPUT: DependencyDefinition(fan_alias(node_id), ITEM_OUTPUT)}
        dependencies[NodeInvocation(ops[node_id].name, alias=alias)] = upstream
    for node_id in spec.handlers:  # on_failure / finally: no dependency; run last by handler_executor
        ops[node_id] = make_handler_op(spec, node_id, policy, _make_op)
        dependencies[NodeInvocation(ops[node_id].name, alias=dagster_name(node_id))] = {}
    graph = GraphDefinition(name=name, node_defs=list(ops.values()), dependencies=dependencies)
    if has_handlers(spec):  # innermost: the SLA watchdog and the mirror see both passes (compiler/handlers.py)
        executor_def = handler_executor(executor_def or multi_or_in_process_executor, spec)
    if has_sla(spec):  # the SLA watchdog runs where the run is orchestrated (compiler/sla.py)
        executor_def = sla_executor(executor_def or multi_or_in_process_executor, spec)
    tags = {TAG_WORKFLOW_ID: spec.id}
    if version is not None:
        tags[TAG_WORKFLOW_VERSION] = str(version)
    if spec.concurrency is not None:  # held by the run coordinator for every run (launcher/coordinator.py)
        tags[TAG_CONCURRENCY_LIMIT] = str(spec.concurrency.limit)
        tags[TAG_ON_LIMIT] = spec.concurrency.on_limit
    return graph.to_job(
        name=name,
        description=spec.description or spec.name,
        resource_defs={RESOURCE_KEY: runtime_resource or plain_runtime, **(extra_resources or {})},
        config=partitioned_config(spec) or _initial_context_mapping(spec),  # partitioned: compiler/partitions.py
        tags=tags,
        metadata={"maestro/workflow_id": spec.id, "maestro/nodes": len(spec.nodes)},
        executor_def=executor_def,
    )


def node_id_by_step_key(spec: WorkflowSpec) -> dict[str, str]:
    """Map Dagster step keys (op aliases) back to node ids (a for_each node's mapped steps: ``names.node_of_step``)."""
    return {dagster_name(node_id): node_id for node_id in [*spec.node_ids, *spec.handlers]}
