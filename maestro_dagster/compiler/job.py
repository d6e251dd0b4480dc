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
from maestro_dagster.compiler.input_config import initial_context_field
from maestro_dagster.compiler.node import OUTPUT_NAME, run_node
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
    upstream = spec.upstream(node_id)
    input_names = {dagster_name(up): up for up in upstream}
    node = spec.nodes[node_id]
    resolve_executor(node.executor_ref, executors)  # refused or unknown: no job (run_node resolves again)

    # context unannotated: Dagster rejects string annotations (this module's are, by its __future__ import)
    def compute(context, inputs: Mapping[str, Any]) -> Iterator[Output]:  # type: ignore[no-untyped-def]
        results: dict[str, NodeResult] = {input_names[name]: value for name, value in inputs.items()}
        yield from run_node(context, spec, node_id, results, executors.origin)

    return OpDefinition(
        compute_fn=compute,
        name=op_name(spec.id, node_id),
        ins={name: In(NodeResult, description=f"result of node {up!r}") for name, up in input_names.items()},
        outs={OUTPUT_NAME: Out(NodeResult, description="this node's result and its ancestors' outputs")},
        description=op_description(node_id, node),
        required_resource_keys={RESOURCE_KEY},
        retry_policy=retry_policy_for(spec.effective_retry(node_id)),
        tags={TAG_NODE_ID: node_id, "maestro/node_type": node.type, "maestro/executor": node.executor_ref},
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
    dependencies = {
        NodeInvocation(ops[node_id].name, alias=dagster_name(node_id)): {
            dagster_name(up): DependencyDefinition(dagster_name(up), OUTPUT_NAME) for up in spec.upstream(node_id)
        }
        for node_id in spec.node_ids
    }
    graph = GraphDefinition(name=name, node_defs=list(ops.values()), dependencies=dependencies)
    if has_sla(spec):  # the SLA watchdog runs where the run is orchestrated (compiler/sla.py)
        executor_def = sla_executor(executor_def or multi_or_in_process_executor, spec)
    tags = {TAG_WORKFLOW_ID: spec.id}
    if version is not None:
        tags[TAG_WORKFLOW_VERSION] = str(version)
    return graph.to_job(
        name=name,
        description=spec.description or spec.name,
        resource_defs={RESOURCE_KEY: runtime_resource or plain_runtime, **(extra_resources or {})},
        config=_initial_context_mapping(spec),
        tags=tags,
        metadata={"maestro/workflow_id": spec.id, "maestro/nodes": len(spec.nodes)},
        executor_def=executor_def,
    )


def node_id_by_step_key(spec: WorkflowSpec) -> dict[str, str]:
    """Map Dagster step keys (op aliases) back to node ids."""
    return {dagster_name(node_id): node_id for node_id in spec.node_ids}
