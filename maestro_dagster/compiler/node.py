"""The body of every op: one Maestro node run the way the original engine ran it, inside Dagster.

For a node it: evaluates the condition (false -> skipped, dependents still run without its output), builds
the original ``node_input``, calls the executor (sync or async, with the node's timeout), and yields one
``Output`` carrying a :class:`NodeResult` for downstream ops plus metadata the mirror reads
(``maestro/status``, ``maestro/output``, ``maestro/artifacts``, ``maestro/inputs``, ``maestro/quality_score``).
A raised error fails the step, and Dagster's ``RetryPolicy`` (from the node's retry policy) retries it.
"""

from __future__ import annotations

import hashlib
import mimetypes
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

from dagster import MetadataValue, OpExecutionContext, Output

from maestro_dagster.compiler import sla
from maestro_dagster.compiler.conditions import decide
from maestro_dagster.compiler.envelope import NodeResult, merge_upstream
from maestro_dagster.compiler.runtime import RESOURCE_KEY, NodeRuntime
from maestro_dagster.errors import NodeTimeoutError
from maestro_dagster.executors import ExecutorContext, NodeInput, build_node_input, invoke, resolve_executor
from maestro_dagster.policy import ExecutorPolicy, Origin
from maestro_dagster.spec import WorkflowSpec
from maestro_dagster.tags import (
    META_ARTIFACTS,
    META_CONDITION,
    META_INPUTS,
    META_OUTPUT,
    META_QUALITY,
    META_STATUS,
    TAG_CELERY_PRIORITY,
    TAG_CELERY_QUEUE,
)

OUTPUT_NAME = "result"


def describe_artifact(path: str) -> dict[str, Any]:
    """Path, name, size and sha256 of a reported artifact (size/sha256 null if the file is missing)."""
    p = Path(path).expanduser()
    p = p if p.is_absolute() else p.resolve()
    info: dict[str, Any] = {"path": str(p), "name": p.name, "size_bytes": None, "sha256": None}
    info["content_type"] = mimetypes.guess_type(p.name)[0]
    if p.is_file():
        digest = hashlib.sha256()
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        info["size_bytes"] = p.stat().st_size
        info["sha256"] = digest.hexdigest()
    return info


def _quality(output: Mapping[str, Any]) -> float | None:
    score = output.get("quality_score")
    return float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None


def _left(timeout: float | None, started: float) -> float | None:
    """One timeout for the node: what its condition's evaluation used is not given to the executor again."""
    return None if timeout is None else max(timeout - (time.monotonic() - started), 0.001)


def run_node(
    context: OpExecutionContext,
    spec: WorkflowSpec,
    node_id: str,
    upstream: Mapping[str, NodeResult],
    origin: Origin,
    extra_input: Mapping[str, Any] | None = None,
) -> Iterator[Output]:
    """Run node ``node_id`` of ``spec`` given its direct upstream results (by node id); its executor is resolved
    under the policy of the definition's ``origin`` with the run's settings (the resolver validation uses).
    ``extra_input``: keys added to the ``node_input`` (a failure handler's ``failure``, ``compiler/handlers.py``)."""
    deadlines = sla.fail_deadlines(context, spec, node_id) if sla.has_sla(spec) else []
    sla.raise_if_missed(deadlines, node_id, spec.id)  # started after the workflow's deadline (on_miss: fail)
    try:
        yield from _run_node(context, spec, node_id, upstream, origin, deadlines, extra_input or {})
    except NodeTimeoutError:
        sla.raise_if_missed(deadlines, node_id, spec.id)  # the timeout was an SLA's: Failure("SLA missed: ...")
        raise


def _run_node(
    context: OpExecutionContext,
    spec: WorkflowSpec,
    node_id: str,
    upstream: Mapping[str, NodeResult],
    origin: Origin,
    deadlines: list[sla.FailDeadline],
    extra_input: Mapping[str, Any],
) -> Iterator[Output]:
    runtime: NodeRuntime = getattr(context.resources, RESOURCE_KEY)
    node = spec.nodes[node_id]
    all_outputs, all_artifacts = merge_upstream(list(upstream.values()))
    inputs_summary = {
        "upstream": {up: res.status for up, res in upstream.items()},
        "config": node.config,
        "global_context_keys": sorted(runtime.initial_context),
        **extra_input,
    }

    timeout = sla.capped_timeout(spec.effective_timeout(node_id), deadlines)
    started = time.monotonic()
    if node.condition:
        # evaluated under the node's timeout (a NodeTimeoutError fails the node); an evaluation error follows
        # defaults.on_condition_error: run (a warning), skip, or fail (ExecutorError naming the condition)
        rule = spec.defaults.on_condition_error
        outcome = decide(
            node.condition,
            all_outputs,
            runtime.initial_context,
            on_error=rule,
            timeout_seconds=timeout,
            settings=runtime.settings,
        )
        if outcome.error:
            action = "running the node" if outcome.run else "skipping the node"
            context.log.warning(
                f"condition of {node_id!r} could not be evaluated ({outcome.error}); {action} "
                f"(defaults.on_condition_error: {rule})"
            )
        if not outcome.run:
            if outcome.error is None:
                context.log.info(f"node {node_id!r} skipped: condition {node.condition!r} is false")
            result = NodeResult(node_id=node_id, status="skipped", all_outputs=all_outputs, all_artifacts=all_artifacts)
            yield Output(
                result,
                OUTPUT_NAME,
                metadata={
                    META_STATUS: "skipped",
                    META_CONDITION: node.condition,
                    META_INPUTS: MetadataValue.json(inputs_summary),
                },
            )
            return

    completed = {up: res for up, res in upstream.items() if res.status == "completed"}
    node_input = build_node_input(
        node_id=node_id,
        node_name=node.name or node_id,
        node_config=node.config,
        dependency_outputs={up: res.output for up, res in completed.items()},
        dependency_artifacts={up: res.artifacts for up, res in completed.items()},
        global_context=runtime.initial_context,
        all_outputs=all_outputs,
        all_artifacts=all_artifacts,
    )
    if extra_input:
        node_input = cast("NodeInput", {**node_input, **extra_input})
    resolved = resolve_executor(node.executor_ref, ExecutorPolicy.for_origin(runtime.settings, origin))
    ctx = ExecutorContext(
        workflow_id=spec.id,
        execution_id=runtime.execution_id,
        run_id=context.run_id,
        node_id=node_id,
        attempt=context.retry_number + 1,
        artifacts_dir=runtime.artifacts_dir(node_id),
        settings=runtime.settings,
        timeout_seconds=_left(timeout, started) if node.condition else timeout,
        log=context.log,
    )
    output = invoke(resolved, node_input, ctx)
    raw_artifacts = output.get("artifacts") or []
    artifacts = [describe_artifact(str(p)) for p in raw_artifacts] if isinstance(raw_artifacts, list) else []
    paths = [a["path"] for a in artifacts]
    result = NodeResult(
        node_id=node_id,
        status="completed",
        output=output,
        artifacts=paths,
        all_outputs={**all_outputs, node_id: output},
        all_artifacts={**all_artifacts, node_id: paths},
    )
    metadata: dict[str, Any] = {
        META_STATUS: "completed",
        META_OUTPUT: MetadataValue.json(output),
        META_ARTIFACTS: MetadataValue.json(artifacts),
        META_INPUTS: MetadataValue.json(inputs_summary),
    }
    quality = _quality(output)
    if quality is not None:
        metadata[META_QUALITY] = quality
    yield Output(result, OUTPUT_NAME, metadata=metadata)


def celery_tags(spec: WorkflowSpec, node_id: str) -> dict[str, str]:
    """The step tags of Dagster's Celery executor for the node: its queue (the node's, else the workflow's) and its
    priority, when named. The local executor ignores them, so one definition runs on either."""
    node = spec.nodes[node_id]
    tags: dict[str, str] = {}
    queue = node.queue or spec.queue
    if queue:
        tags[TAG_CELERY_QUEUE] = queue
    if node.priority is not None:
        tags[TAG_CELERY_PRIORITY] = str(node.priority)
    return tags
