"""SLAs at run time: the watchdog that records a missed SLA while the run goes on, and the failure ``on_miss: fail``
makes.

``sla_executor`` wraps a job's executor (every launch path runs it: a run worker of the daemon or the webserver,
``maestro run`` in-process, ``dagster job execute``). In the process that orchestrates the run it watches the events
the executor hands on: the workflow's timer is armed when the plan starts executing, with the deadline counted from
the execution's first start (the start time Dagster recorded for the root run, so a resumed execution keeps it), a
node's timer when its attempt starts (``STEP_START`` / ``STEP_RESTARTED``), disarmed when the attempt ends. A timer
that fires writes one Dagster engine event into the run's event log, with the metadata ``maestro/sla_missed``
(scope, node id, limit, elapsed); the mirror makes it an ``sla_missed`` row (``mirror/reducer.py``). Once per
execution and scope/node: what earlier runs of the execution (its parent chain) recorded is read when the plan
starts, and a run writes each key once. Timers are daemon threads: they never keep a process alive.

``on_miss: fail`` is Dagster's own failure: the node's op caps its executor's timeout at the deadline (its own, or
the workflow's) and raises ``dagster.Failure("SLA missed: ...", allow_retries=False)`` when it is reached, or at
once when an op starts after the workflow's deadline; the step fails without retry, nodes downstream never start,
and the run fails with that reason (the execution's ``error_message``). When that failure reaches the watchdog
before its own timer, the watchdog writes the event then. Dagster offers no clean way to fail a run from another
thread of an in-process run, and a termination would end it ``cancelled``: hence the failure comes from the step.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from dagster import DagsterEventType, DagsterInstance, DagsterRun, ExecutorDefinition, Failure, MetadataValue
from dagster._core.events import EngineEventData
from dagster._core.executor.base import Executor

from maestro_dagster.names import dagster_name
from maestro_dagster.spec import WorkflowSpec
from maestro_dagster.spec.sla import META_SLA_MISSED, SCOPE_NODE, SCOPE_WORKFLOW, SLASpec
from maestro_dagster.step_processes import DelegatingExecutor, wrapped_executor

log = logging.getLogger(__name__)
SCOPE_METADATA = "maestro/sla_scope"  # on the Failure an SLA with on_miss fail raises: which SLA ended the node
_ATTEMPT_STARTS = ("STEP_START", "STEP_RESTARTED")
_ATTEMPT_ENDS = ("STEP_SUCCESS", "STEP_FAILURE", "STEP_UP_FOR_RETRY", "STEP_SKIPPED")
Key = tuple[str, str | None]  # (scope, node id)


def has_sla(spec: WorkflowSpec) -> bool:
    return spec.sla is not None or any(node.sla is not None for node in spec.nodes.values())


def execution_started_at(instance: DagsterInstance, run: DagsterRun) -> float:
    """When the execution of ``run`` first started (epoch seconds): its root run's start, else now."""
    record = instance.get_run_record_by_id(run.root_run_id or run.run_id)
    start = record.start_time if record is not None else None
    return float(start) if start is not None else time.time()


def missed_before(instance: DagsterInstance, run: DagsterRun) -> set[Key]:
    """The SLAs earlier runs of this execution (``run``'s parent chain) recorded as missed."""
    out: set[Key] = set()
    parent_id, seen = run.parent_run_id, 0
    while parent_id and seen < 100:
        for record in instance.get_records_for_run(parent_id, of_type=DagsterEventType.ENGINE_EVENT).records:
            payload = sla_payload(record.event_log_entry)
            if payload is not None:
                out.add((str(payload.get("scope")), payload.get("node_id")))
        parent = instance.get_run_by_id(parent_id)
        parent_id, seen = (parent.parent_run_id if parent is not None else None), seen + 1
    return out


def sla_payload(entry: Any) -> dict[str, Any] | None:
    """The ``maestro/sla_missed`` metadata of an engine event entry, else None."""
    event = getattr(entry, "dagster_event", None)
    data = getattr(event, "event_specific_data", None) if event is not None else None
    value = (getattr(data, "metadata", None) or {}).get(META_SLA_MISSED) if isinstance(data, EngineEventData) else None
    value = getattr(value, "value", value)
    return value if isinstance(value, dict) else None


class SlaWatch:
    """The timers of one run, in its orchestrating process."""

    def __init__(self, instance: DagsterInstance, run: DagsterRun, spec: WorkflowSpec) -> None:
        self.instance, self.run, self.spec = instance, run, spec
        self.node_by_step = {dagster_name(n): n for n, node in spec.nodes.items() if node.sla is not None}
        self._lock = threading.Lock()
        self._fired: set[Key] = set()
        self._timers: dict[Key, threading.Timer] = {}
        self._started: dict[Key, float] = {}
        self._stopped = False

    def start(self) -> None:
        try:
            self._fired |= missed_before(self.instance, self.run)
        except Exception as exc:  # storage trouble: a resumed execution may record a miss again
            log.warning("could not read the SLAs earlier runs of %s missed: %s", self.run.run_id, exc)
        if self.spec.sla is not None:
            started = execution_started_at(self.instance, self.run)
            self._arm((SCOPE_WORKFLOW, None), self.spec.sla, started)

    def _arm(self, key: Key, sla: SLASpec, started: float) -> None:
        with self._lock:
            if self._stopped or key in self._fired:
                return
            old = self._timers.pop(key, None)
            if old is not None:
                old.cancel()
            self._started[key] = started
            delay = max(0.0, started + sla.max_duration_seconds - time.time())
            timer = threading.Timer(delay, self.fire, args=(key, sla))
            timer.daemon = True
            timer.name = f"maestro-sla-{key[1] or 'workflow'}-{self.run.run_id[:8]}"
            self._timers[key] = timer
            timer.start()

    def _disarm(self, key: Key) -> None:
        with self._lock:
            timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def saw(self, event: Any) -> None:
        """An event the executor handed on: a node's attempt started or ended."""
        node_id = self.node_by_step.get(getattr(event, "step_key", None) or "")
        if node_id is None:
            return
        etype, key = event.event_type_value, (SCOPE_NODE, node_id)
        sla = self.spec.nodes[node_id].sla
        assert sla is not None
        if etype in _ATTEMPT_STARTS:
            self._arm(key, sla, time.time())
        elif etype in _ATTEMPT_ENDS:
            ended_by = _sla_scope_of_failure(event) if etype == "STEP_FAILURE" else None
            if ended_by == SCOPE_NODE:
                self.fire(key, sla)
            elif ended_by == SCOPE_WORKFLOW and self.spec.sla is not None:
                self.fire((SCOPE_WORKFLOW, None), self.spec.sla)
            self._disarm(key)

    def fire(self, key: Key, sla: SLASpec) -> None:
        """Record the miss of ``key`` (once): a Dagster engine event in the run's event log."""
        with self._lock:
            if key in self._fired or self._stopped:
                return
            self._fired.add(key)
            self._timers.pop(key, None)
            started = self._started.get(key, time.time())
        scope, node_id = key
        elapsed = round(time.time() - started, 3)
        payload = {
            "scope": scope,
            "node_id": node_id,
            "limit_seconds": sla.max_duration_seconds,
            "elapsed_seconds": elapsed,
            "on_miss": sla.on_miss,
        }
        what = f"node {node_id!r}" if node_id else f"workflow {self.spec.id!r}"
        limit = sla.max_duration_seconds
        message = f"SLA missed: {what} has run {elapsed:.1f} s, over its max_duration_seconds ({limit:g} s)"
        try:
            self.instance.report_engine_event(
                message,
                self.run,
                EngineEventData(metadata={META_SLA_MISSED: MetadataValue.json(payload)}),
                cls=SlaWatch,
                step_key=dagster_name(node_id) if node_id else None,
            )
        except Exception as exc:  # never fail the run for this: the miss is logged instead
            log.warning("could not record a missed SLA of run %s (%s): %s", self.run.run_id, message, exc)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()


def _sla_scope_of_failure(event: Any) -> str | None:
    data = getattr(event, "event_specific_data", None)
    failure = getattr(data, "user_failure_data", None)
    value = (getattr(failure, "metadata", None) or {}).get(SCOPE_METADATA)
    value = getattr(value, "value", value)
    return value if value in (SCOPE_NODE, SCOPE_WORKFLOW) else None


class SlaExecutor(DelegatingExecutor):
    def __init__(self, inner: Executor, spec: WorkflowSpec) -> None:
        super().__init__(inner)
        self._spec = spec

    def execute(self, plan_context: Any, execution_plan: Any) -> Iterator[Any]:
        watch = SlaWatch(plan_context.instance, plan_context.dagster_run, self._spec)
        watch.start()
        events = self._inner.execute(plan_context, execution_plan)
        try:
            for event in events:
                watch.saw(event)
                yield event
        finally:
            watch.stop()
            close = getattr(events, "close", None)
            if close is not None:
                close()


def sla_executor(inner: ExecutorDefinition, spec: WorkflowSpec) -> ExecutorDefinition:
    """``inner`` (same name and config) with the SLA watchdog of ``spec``."""
    return wrapped_executor(inner, lambda executor: SlaExecutor(executor, spec))


# ---- in the op: on_miss fail ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailDeadline:
    """A deadline (epoch seconds) at which the node fails: its own SLA's, or the workflow's."""

    scope: str
    at: float
    limit: float

    def failure(self, node_id: str, workflow_id: str) -> Failure:
        what = f"node {node_id!r}" if self.scope == SCOPE_NODE else f"workflow {workflow_id!r}"
        return Failure(
            description=f"SLA missed: {what} ran longer than its max_duration_seconds ({self.limit:g} s); "
            "on_miss: fail ends it (no retry)",
            metadata={SCOPE_METADATA: self.scope},
            allow_retries=False,
        )


def fail_deadlines(context: Any, spec: WorkflowSpec, node_id: str) -> list[FailDeadline]:
    """The ``on_miss: fail`` deadlines that bound this attempt of ``node_id`` (started now)."""
    out: list[FailDeadline] = []
    node_sla = spec.nodes[node_id].sla
    if node_sla is not None and node_sla.on_miss == "fail":
        out.append(FailDeadline(SCOPE_NODE, time.time() + node_sla.max_duration_seconds, node_sla.max_duration_seconds))
    if spec.sla is not None and spec.sla.on_miss == "fail":
        started = execution_started_at(context.instance, context.dagster_run)
        out.append(FailDeadline(SCOPE_WORKFLOW, started + spec.sla.max_duration_seconds, spec.sla.max_duration_seconds))
    return out


def capped_timeout(timeout: float | None, deadlines: list[FailDeadline]) -> float | None:
    """The node's timeout, no later than the first deadline."""
    if not deadlines:
        return timeout
    left = max(min(d.at for d in deadlines) - time.time(), 0.001)
    return left if timeout is None else min(timeout, left)


def raise_if_missed(deadlines: list[FailDeadline], node_id: str, workflow_id: str, slack: float = 0.05) -> None:
    """Raise the failure of the first deadline already reached."""
    now = time.time()
    for deadline in sorted(deadlines, key=lambda d: d.at):
        if now + slack >= deadline.at:
            raise deadline.failure(node_id, workflow_id)
