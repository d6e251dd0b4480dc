"""Failure handlers at run time: the ``on_failure`` / ``finally`` ops and the executor pass that runs them last.

Every handler node is an op of the workflow's job, with no dependency (Dagster shows it; its steps get node
states like any node). ``handler_executor`` wraps the job's executor: it executes the run's plan without the
handler steps, then, in the same run and with the same inner executor, the ``on_failure`` steps, then the
``finally`` steps, whatever the first pass did (succeeded, a step failed, the run was cancelled: Dagster's
interrupt, which the inner executor turns into ``DagsterExecutionInterruptedError`` once its step processes have
stopped, is held until the handlers have run, then raised again so the run still ends CANCELED). A second
interrupt stops the handlers too. A run paused by ``maestro pause`` (it will be resumed) runs no handler. A resumed
or replayed run runs every handler of the job again, even one its step selection left out.

A handler step reads what happened from the run's own event log (``failure_of_run``): the status (``failed``,
``cancelled`` or ``completed``) and every failed node of this run with its error, given to the executor as
``node_input["failure"]``. An ``on_failure`` node yields a ``skipped`` result when nothing failed. The run's
status is Dagster's own rule: failed when a step failed (the first failure is the run's error, and the mirror keeps
a main node's error as the execution's when a handler fails too: ``mirror/reducer.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from dagster import DagsterEventType, DagsterRunStatus, ExecutorDefinition, MetadataValue, OpDefinition, Output
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.events import DagsterEvent, EngineEventData
from dagster._core.executor.base import Executor
from dagster._core.system_config.objects import ResolvedRunConfig

from maestro_dagster.compiler.envelope import NodeResult
from maestro_dagster.compiler.node import OUTPUT_NAME, run_node
from maestro_dagster.compiler.runtime import RESOURCE_KEY, TAG_NODE_ID
from maestro_dagster.errors import user_error
from maestro_dagster.names import dagster_name, node_of_step, op_name
from maestro_dagster.policy import ExecutorPolicy
from maestro_dagster.spec import WorkflowSpec
from maestro_dagster.spec.models import HANDLER_GROUPS
from maestro_dagster.step_processes import DelegatingExecutor, wrapped_executor
from maestro_dagster.tags import META_CONDITION, META_INPUTS, META_STATUS, TAG_PAUSE

log = logging.getLogger(__name__)
TAG_HANDLER = "maestro/handler"
"""Op tag of a handler node: its group (``on_failure`` or ``finally``)."""
NOTHING_FAILED = "on_failure: no node failed"
_STOPPED = (DagsterRunStatus.CANCELING, DagsterRunStatus.CANCELED)


def has_handlers(spec: WorkflowSpec) -> bool:
    return bool(spec.on_failure or spec.finally_)


def failure_of_run(context: Any, spec: WorkflowSpec) -> dict[str, Any]:
    """What the handlers of this run are told: ``{status, run_id, failed_nodes: [{node_id, error, error_type}]}``."""
    node_by_step = {dagster_name(n): n for n in spec.node_ids}
    failed: list[dict[str, Any]] = []
    for entry in context.instance.all_logs(context.run_id, of_type=DagsterEventType.STEP_FAILURE):
        event = entry.dagster_event
        node_id = node_of_step(event.step_key or "", node_by_step)  # a for_each item: its own id, x[3]
        if node_id is None:
            continue
        message, cls_name = user_error(getattr(event.event_specific_data, "error", None))
        failed.append({"node_id": node_id, "error": message, "error_type": cls_name})
    run = context.instance.get_run_by_id(context.run_id)
    cancelled = run is not None and run.status in _STOPPED
    status = "cancelled" if cancelled else "failed" if failed else "completed"
    return {"status": status, "run_id": context.run_id, "failed_nodes": failed}


def make_handler_op(spec: WorkflowSpec, node_id: str, executors: ExecutorPolicy, make_op: Any) -> OpDefinition:
    """The op of handler ``node_id``: ``make_op`` (the compiler's op builder) over ``spec.handler_spec``, with a
    body that gives the node the run's failure and skips an ``on_failure`` node when nothing failed."""
    group = spec.handlers[node_id][0]
    alone = spec.handler_spec(node_id)
    base: OpDefinition = make_op(alone, node_id, executors)

    def compute(context, inputs: Any) -> Iterator[Output]:  # type: ignore[no-untyped-def]
        failure = failure_of_run(context, spec)
        if group == HANDLER_GROUPS[0] and failure["status"] == "completed":
            context.log.info(f"{group} node {node_id!r} skipped: no node failed and the run was not cancelled")
            result = NodeResult(node_id=node_id, status="skipped")
            metadata = {META_STATUS: "skipped", META_CONDITION: NOTHING_FAILED}
            yield Output(result, OUTPUT_NAME, metadata={**metadata, META_INPUTS: MetadataValue.json(failure)})
            return
        yield from run_node(context, alone, node_id, {}, executors.origin, extra_input={"failure": failure})

    return OpDefinition(
        compute_fn=compute,
        name=op_name(spec.id, node_id),
        ins={},
        outs=base.outs,
        description=f"{group} handler\n\n{base.description}",
        required_resource_keys={RESOURCE_KEY},
        retry_policy=base.retry_policy,
        tags={**base.tags, TAG_NODE_ID: node_id, TAG_HANDLER: group},
        pool=base.pool,
    )


class HandlerExecutor(DelegatingExecutor):
    """Runs the main steps, then the ``on_failure`` steps, then the ``finally`` steps (module docstring)."""

    def __init__(self, inner: Executor, spec: WorkflowSpec) -> None:
        super().__init__(inner)
        self._groups = {dagster_name(n): group for n, (group, _node) in spec.handlers.items()}

    def _pass(self, plan_context: Any, plan: Any) -> Iterator[Any]:
        events = self._inner.execute(plan_context, plan)
        try:
            yield from events
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    def execute(self, plan_context: Any, execution_plan: Any) -> Iterator[Any]:
        job_def = plan_context.job.get_definition()
        resolved = ResolvedRunConfig.build(job_def, plan_context.dagster_run.run_config)
        main = [k for k in execution_plan.step_keys_to_execute if k not in self._groups]
        held: BaseException | None = None
        if main:
            try:
                yield from self._pass(plan_context, execution_plan.build_subset_plan(main, job_def, resolved))
            except (Exception, DagsterExecutionInterruptedError, KeyboardInterrupt) as exc:
                held = exc  # the handlers run first; then it ends the run as it would have
        run = plan_context.instance.get_run_by_id(plan_context.run_id)
        paused = run is not None and run.tags.get(TAG_PAUSE) == "true"
        known = set(execution_plan.step_dict_by_key)  # every step of the job, also those a selection left out
        for group in HANDLER_GROUPS if not paused else ():
            keys = [k for k, g in self._groups.items() if g == group and k in known]
            if not keys:
                continue
            yield DagsterEvent.engine_event(
                plan_context, f"Running the {group} nodes: {', '.join(keys)}", EngineEventData()
            )
            try:
                yield from self._pass(plan_context, execution_plan.build_subset_plan(keys, job_def, resolved))
            except (DagsterExecutionInterruptedError, KeyboardInterrupt) as exc:  # interrupted again: stop here
                held = held or exc
                break
            except Exception as exc:
                held = held or exc
        if held is not None:
            raise held


def handler_executor(inner: ExecutorDefinition, spec: WorkflowSpec) -> ExecutorDefinition:
    """``inner`` (same name and config) that runs the failure handlers of ``spec`` last."""
    return wrapped_executor(inner, lambda executor: HandlerExecutor(executor, spec))
