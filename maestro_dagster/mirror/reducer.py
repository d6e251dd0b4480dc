"""The mirror's rules: how one Dagster event changes an execution's view, and which rows it adds.

Applying an event twice, or an old run's event after a newer run's, changes nothing: node states only
move forward (a newer run, or a higher attempt in the same run), execution status follows only the latest
run, and every event row is keyed by (run id, storage id, part), so a replay inserts nothing. A replay
offers the same rows as the first pass (their data comes from the events, not from the view as it ends
up), so a catch-up pass re-creates a lost row exactly.

Mapping: run start -> ``workflow_started`` (``workflow_resumed`` for a re-execution); run success /
failure / cancel -> ``workflow_completed`` / ``workflow_failed`` / ``workflow_cancelled`` (``workflow_paused``
when the run was terminated by a pause); ``STEP_START`` and each ``STEP_RESTARTED`` -> ``node_started``;
``STEP_UP_FOR_RETRY`` -> ``node_retry``; ``STEP_OUTPUT`` of a skipped node -> ``node_skipped``, of a
completed one -> its outputs and ``artifact_created`` per file; ``STEP_SUCCESS`` -> ``node_completed``;
``STEP_FAILURE`` -> ``node_failed``; an engine event marked ``maestro/sla_missed`` (``compiler/sla.py``, written
while the run goes on, once per execution and scope/node) -> ``sla_missed``; one marked ``maestro/skipped`` (the
run coordinator did not run the run, ``launcher/concurrency.py``) -> ``workflow_skipped``, its message the
execution's error. A ``for_each`` node's fan-out step is the node's state, each of its items' steps ``x[3]`` a
node state ``x[3]`` of its own, made on the item's first event (``names.node_of_step``); an output without
``maestro/status`` (an item handed to the mapped steps) changes nothing. When a run fails or is cancelled,
nodes that never ran are ``blocked`` (``node_blocked``; for a replay also the selected nodes it never started)
and nodes still running are failed. A run ends once: its first end event counts, and a later one for the same
run (a failure reported twice) adds no row.

Node and execution fields: ``duration_seconds`` is always ``completed_at - started_at`` of the node's latest
attempt (Dagster's own step time is kept in ``node_completed.data.step_seconds``); a node's ``error_*`` is
its latest failure and is cleared when a later attempt completes or skips (the failures stay in the
``node_retry`` / ``node_failed`` events). The execution's ``error_*`` follow its latest run: cleared when that
run starts, set by its failed node (the latest, if several fail), else (a killed or cancelled run) by the first
node, by node id, that the run's end stopped. A node stopped by a cancel (its step interrupted, or still running
at the run's end) gets the sentence ``stopped_text`` makes ("cancelled by <who> at <when>") as its error.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from maestro_dagster.mirror.model import (
    ArtifactRow,
    DagsterEventIn,
    EventRow,
    ExecutionView,
    NodeView,
    RunView,
)
from maestro_dagster.names import base_node_id, node_of_step
from maestro_dagster.spec.models import DEFAULT_QUALITY_THRESHOLD, HANDLER_GROUPS
from maestro_dagster.spec.sla import META_SLA_MISSED
from maestro_dagster.states import EventType, NodeStatus, RunKind, WorkflowStatus
from maestro_dagster.tags import (
    META_ARTIFACTS,
    META_CONDITION,
    META_INPUTS,
    META_OUTPUT,
    META_QUALITY,
    META_SKIPPED,
    META_STATUS,
)

RUN_START = "PIPELINE_START"
RUN_SUCCESS = "PIPELINE_SUCCESS"
RUN_FAILURE = "PIPELINE_FAILURE"
RUN_CANCELED = "PIPELINE_CANCELED"
RUN_TERMINAL = (RUN_SUCCESS, RUN_FAILURE, RUN_CANCELED)
RUN_ENDED = "RunEnded"  # error_type of a node that was still running when its run ended
INTERRUPTED = "DagsterExecutionInterruptedError"  # error_type of a step Dagster interrupted (a termination)
SLA_EVENT = "ENGINE_EVENT"  # the Dagster event type of a missed SLA's record: only those marked are read
TERMINATION_BY_DAGSTER = "a run termination request to Dagster (the Dagster UI or its GraphQL API)"


def needs_fresh_run(events: list[DagsterEventIn]) -> bool:
    """Do these events' rows depend on the run's tags and status (``RunFacts``) as they are now?

    A pass that reads such events reads the run again after them, unless it read the run as finished.
    """
    return any(
        e.event_type in RUN_TERMINAL or (e.event_type == "STEP_FAILURE" and e.error_type == INTERRUPTED) for e in events
    )


def stopped_text(run: RunView, at: datetime) -> str:
    """A stopped node's error: who stopped ``run`` (its ``RunFacts``), and when the node stopped (UTC)."""
    when = at.strftime("%Y-%m-%d %H:%M:%S UTC")
    if run.pause_requested:
        who = "a pause request" + (f" by {run.cancelled_by}" if run.cancelled_by else "")
    elif run.cancelled_by:
        who = run.cancelled_by
    elif run.termination_requested:
        who = TERMINATION_BY_DAGSTER
    else:
        return f"interrupted at {when} with no termination requested (its process was stopped: Ctrl-C or a signal)"
    return f"cancelled by {who} at {when}"


def finish(node: NodeView, at: datetime) -> None:
    """The node's latest attempt ended at ``at``: ``completed_at`` and ``duration_seconds`` agree."""
    node.completed_at = at
    node.duration_seconds = None if node.started_at is None else attempt_seconds(node.started_at, at)


def attempt_seconds(started: datetime, ended: datetime) -> float:
    return round(max(0.0, (ended - started).total_seconds()), 6)


class Reducer:
    """Applies Dagster events of an execution's runs to its view, collecting rows to insert."""

    def __init__(self, view: ExecutionView, node_by_step: dict[str, str]) -> None:
        self.view = view
        self.node_by_step = node_by_step
        self.events: list[EventRow] = []
        self.artifacts: list[ArtifactRow] = []
        # (run id, node id) -> the attempt / output this pass last saw: event data that does not depend on
        # how far the view already is when events are replayed.
        self._attempt_seen: dict[tuple[str, str], int] = {}
        self._output_seen: dict[tuple[str, str], Any] = {}
        self._started_seen: dict[tuple[str, str], datetime] = {}

    # -- helpers ----------------------------------------------------------------------------------
    def _emit(
        self, ev: DagsterEventIn, etype: EventType, node_id: str | None, data: dict[str, Any], part: int = 0
    ) -> None:
        message = f"{etype.value}: {node_id or 'workflow'}"
        self.events.append(EventRow(etype, node_id, message, data, ev.timestamp, ev.run_id, ev.storage_id, part))

    def _run(self, run_id: str) -> RunView:
        return self.view.runs[run_id]

    def _is_latest(self, run_id: str) -> bool:
        return self.view.latest_run_id() == run_id

    def _attempt(self, ev: DagsterEventIn, node: NodeView) -> int | None:
        """The attempt of ``node`` in ``ev``'s run that ``ev`` belongs to."""
        seen = self._attempt_seen.get((ev.run_id, node.node_id))
        if seen is not None:
            return seen
        return node.run_attempt if node.last_run_id == ev.run_id else None

    def _owns(self, node: NodeView, run_id: str) -> bool:
        """May an event of ``run_id`` change this node? (its run is the node's run or a newer one)."""
        if node.last_run_id is None or node.last_run_id == run_id or node.last_run_id not in self.view.runs:
            return True
        return self._run(run_id).order > self._run(node.last_run_id).order

    # -- entry point ------------------------------------------------------------------------------
    def apply(self, ev: DagsterEventIn) -> None:
        if ev.run_id not in self.view.runs:
            return
        if ev.event_type == SLA_EVENT and META_SKIPPED in ev.metadata:
            self._skipped(ev)
        elif ev.event_type == SLA_EVENT:
            self._sla_missed(ev)
        elif ev.event_type == RUN_START:
            self._run_start(ev)
        elif ev.event_type in RUN_TERMINAL:
            self._run_end(ev)
        elif ev.step_key is not None and (handler := STEP_HANDLERS.get(ev.event_type)) is not None:
            node = self._node_of(ev.step_key)
            if node is not None:
                handler(self, ev, node)

    def _node_of(self, step_key: str) -> NodeView | None:
        """The node state of a step: the node's, or (a ``for_each`` node's item ``x[3]``) one made on its first
        event from the node's, which is the fan-out step's (``names.node_of_step``)."""
        node_id = node_of_step(step_key, self.node_by_step)
        if node_id is None:
            return None
        node = self.view.nodes.get(node_id)
        if node is None and (template := self.view.nodes.get(base_node_id(node_id))) is not None:
            key = node_id[len(template.node_id) :]
            node = self.view.nodes[node_id] = NodeView(
                node_id=node_id,
                node_name=f"{template.node_name or template.node_id}{key}",
                node_type=template.node_type,
                max_retries=template.max_retries,
                quality_threshold=template.quality_threshold,
            )
        return node

    def _sla_missed(self, ev: DagsterEventIn) -> None:
        """A missed SLA, as the watchdog recorded it (it writes each scope/node once per execution)."""
        payload = ev.metadata.get(META_SLA_MISSED)
        if not isinstance(payload, dict):
            return
        node_id = payload.get("node_id")
        if node_id is not None and node_id not in self.view.nodes:
            return
        keys = ("scope", "limit_seconds", "elapsed_seconds", "on_miss")
        self._emit(ev, EventType.SLA_MISSED, node_id, {k: payload.get(k) for k in keys})

    def _skipped(self, ev: DagsterEventIn) -> None:
        """The run coordinator did not run this run: its workflow was at its limit (``on_limit: skip``). The run's
        cancel follows; the execution's error is this event's message ("skipped: ...")."""
        payload = ev.metadata.get(META_SKIPPED)
        if not isinstance(payload, dict):
            return
        keys = ("limit", "on_limit", "counted")
        self._emit(ev, EventType.WORKFLOW_SKIPPED, None, {"run_id": ev.run_id, **{k: payload.get(k) for k in keys}})
        if self._is_latest(ev.run_id) and not self._run(ev.run_id).status.is_terminal:
            self.view.error_message, self.view.error_node_id = ev.message, None

    # -- run events -------------------------------------------------------------------------------
    def _run_start(self, ev: DagsterEventIn) -> None:
        run = self._run(ev.run_id)
        resumed = run.kind is not RunKind.INITIAL
        etype = EventType.WORKFLOW_RESUMED if resumed else EventType.WORKFLOW_STARTED
        data: dict[str, Any] = {"run_id": ev.run_id, "kind": run.kind.value}
        data["parent_run_id" if resumed else "initial_context"] = (
            run.parent_run_id if resumed else self.view.global_context
        )
        self._emit(ev, etype, None, data)
        if run.status.is_terminal:
            return
        run.status, run.dagster_status = WorkflowStatus.RUNNING, "STARTED"
        run.started_at = run.started_at or ev.timestamp
        if self._is_latest(ev.run_id):
            self.view.status = WorkflowStatus.RUNNING
            self.view.started_at = self.view.started_at or ev.timestamp
            self.view.completed_at = None
            self.view.paused_at = None
            self.view.error_message = self.view.error_node_id = None  # they follow the latest run

    def _run_end(self, ev: DagsterEventIn) -> None:
        run = self._run(ev.run_id)
        if run.completed_at is not None and run.completed_at != ev.timestamp:
            # A run ends once. A second end event (two processes noticed the same dead worker and both
            # reported the failure) changes nothing; a replay of the end already applied has its time.
            return
        status = {
            RUN_SUCCESS: WorkflowStatus.COMPLETED,
            RUN_FAILURE: WorkflowStatus.FAILED,
            RUN_CANCELED: WorkflowStatus.PAUSED if run.pause_requested else WorkflowStatus.CANCELLED,
        }[ev.event_type]
        etype = {
            WorkflowStatus.COMPLETED: EventType.WORKFLOW_COMPLETED,
            WorkflowStatus.FAILED: EventType.WORKFLOW_FAILED,
            WorkflowStatus.PAUSED: EventType.WORKFLOW_PAUSED,
            WorkflowStatus.CANCELLED: EventType.WORKFLOW_CANCELLED,
        }[status]
        latest = self._is_latest(ev.run_id)
        if status is not WorkflowStatus.COMPLETED and latest:
            self._close_unfinished(ev, status)
        self.view.refresh_counts()
        data: dict[str, Any] = {
            "run_id": ev.run_id,
            "completed_nodes": self.view.completed_nodes,
            "total_nodes": self.view.total_nodes,
        }
        if status is WorkflowStatus.FAILED:
            data["failed_node"] = self.view.error_node_id
            data["error"] = self.view.error_message or ev.message
        self._emit(ev, etype, None, data)
        run.status, run.completed_at = status, ev.timestamp
        run.dagster_status = {RUN_SUCCESS: "SUCCESS", RUN_FAILURE: "FAILURE", RUN_CANCELED: "CANCELED"}[ev.event_type]
        if not latest:
            return
        self.view.status = status
        if status is WorkflowStatus.PAUSED:
            self.view.paused_at = ev.timestamp
            self.view.completed_at = None
        else:
            self.view.completed_at = ev.timestamp
        if status is not WorkflowStatus.COMPLETED and not self.view.error_message:
            self.view.error_message = ev.message if status is WorkflowStatus.FAILED else stopped_text(run, ev.timestamp)
        if status is WorkflowStatus.COMPLETED:
            self.view.error_message = self.view.error_node_id = None
            self.view.final_context = {
                "global_context": self.view.global_context,
                "outputs": {n.node_id: n.outputs for n in self.view.nodes.values() if n.status is NodeStatus.COMPLETED},
            }

    def _close_unfinished(self, ev: DagsterEventIn, status: WorkflowStatus) -> None:
        """Nodes still running fail; nodes that never ran are blocked (event parts 1, 2, ... by node id).

        A replay run (kind ``replay``) blocks the nodes it selected and never started, whatever an older run left
        them as. On a replay the nodes this run's end already closed get the same rows again.
        """
        part, stopped = 1, []
        run = self._run(ev.run_id)
        selected = run.selected_steps if run.kind is RunKind.REPLAY and run.selected_steps else frozenset()
        replayed = {node_id for step in selected if (node_id := node_of_step(step, self.node_by_step))}
        for node in sorted(self.view.nodes.values(), key=lambda n: n.node_id):
            this_run = node.last_run_id == ev.run_id
            if node.status is NodeStatus.RUNNING and this_run:
                node.status = NodeStatus.FAILED
                finish(node, ev.timestamp)
                node.error_message = (
                    f"the run ended ({status.value}) while this node was running"
                    if status is WorkflowStatus.FAILED
                    else stopped_text(self._run(ev.run_id), ev.timestamp)
                )
                node.error_type = RUN_ENDED
            elif not this_run and (node.status in (NodeStatus.PENDING, NodeStatus.BLOCKED) or node.node_id in replayed):
                node.status = NodeStatus.BLOCKED
                node.last_run_id = ev.run_id
                node.run_attempt = 0
            elif not (this_run and (node.status is NodeStatus.BLOCKED or node.error_type == RUN_ENDED)):
                continue
            if node.status is NodeStatus.BLOCKED:
                self._emit(ev, EventType.NODE_BLOCKED, node.node_id, {"reason": f"run {status.value}"}, part)
            else:
                stopped.append(node.node_id)
                data = {"error": node.error_message, "error_type": RUN_ENDED, "attempts": node.run_attempt}
                self._emit(ev, EventType.NODE_FAILED, node.node_id, data, part)
            part += 1
        if stopped and self.view.error_node_id is None:
            self.view.error_node_id = stopped[0]

    # -- step events ------------------------------------------------------------------------------
    def _step_started(self, ev: DagsterEventIn, node: NodeView, attempt: int) -> None:
        run_id = ev.run_id
        self._attempt_seen[(run_id, node.node_id)] = attempt
        self._started_seen[(run_id, node.node_id)] = ev.timestamp
        base = node.attempt_count - node.run_attempt if node.last_run_id == run_id else node.attempt_count
        if self._owns(node, run_id):
            if node.last_run_id != run_id:
                node.last_run_id, node.run_attempt = run_id, 0
            if attempt > node.run_attempt:
                node.run_attempt = attempt
                node.attempt_count = base + attempt
                node.status = NodeStatus.RUNNING
                node.started_at, node.completed_at, node.duration_seconds = ev.timestamp, None, None
            if self._is_latest(run_id):  # also on a replay: a full pass ends on the most recently started node
                self.view.current_phase = node.node_id
        data = {"attempt": attempt, "max_attempts": node.max_retries + 1, "total_attempts": base + attempt}
        self._emit(ev, EventType.NODE_STARTED, node.node_id, data)

    def _step_start(self, ev: DagsterEventIn, node: NodeView) -> None:
        self._step_started(ev, node, ev.attempt or 1)

    def _step_restarted(self, ev: DagsterEventIn, node: NodeView) -> None:
        self._step_started(ev, node, ev.attempt or (self._attempt(ev, node) or 0) + 1)

    def _step_up_for_retry(self, ev: DagsterEventIn, node: NodeView) -> None:
        if self._owns(node, ev.run_id):
            node.error_message, node.error_type = ev.error_message, ev.error_type
        data = {"attempt": self._attempt(ev, node), "delay": ev.seconds_to_wait or 0, "error": ev.error_message}
        self._emit(ev, EventType.NODE_RETRY, node.node_id, data)

    def _step_output(self, ev: DagsterEventIn, node: NodeView) -> None:
        meta = ev.metadata
        if META_STATUS not in meta:  # not a node's result: a fan-out step's item (compiler/fanout.py)
            return
        owns = self._owns(node, ev.run_id)
        if meta.get(META_STATUS) == "skipped":
            if owns:
                node.status = NodeStatus.SKIPPED
                finish(node, ev.timestamp)
                node.error_message = node.error_type = None
                node.inputs = meta.get(META_INPUTS)
            self._emit(ev, EventType.NODE_SKIPPED, node.node_id, {"condition": meta.get(META_CONDITION)})
            return
        self._output_seen[(ev.run_id, node.node_id)] = meta.get(META_OUTPUT)
        if owns:
            node.outputs = meta.get(META_OUTPUT)
            node.inputs = meta.get(META_INPUTS)
            score = meta.get(META_QUALITY)
            node.quality_score = float(score) if score is not None else None
            threshold = node.quality_threshold if node.quality_threshold is not None else DEFAULT_QUALITY_THRESHOLD
            node.contract_fulfilled = None if node.quality_score is None else node.quality_score >= threshold
        for index, art in enumerate(meta.get(META_ARTIFACTS) or [], start=1):
            row = ArtifactRow(
                node.node_id, art["path"], art["name"], art.get("size_bytes"), art.get("sha256"),
                art.get("content_type"), ev.run_id,
            )  # fmt: skip
            self.artifacts.append(row)
            data = {"path": row.path, "size_bytes": row.size_bytes, "sha256": row.sha256}
            self._emit(ev, EventType.ARTIFACT_CREATED, node.node_id, data, index)

    def _step_success(self, ev: DagsterEventIn, node: NodeView) -> None:
        step_seconds = round(ev.duration_ms / 1000, 6) if ev.duration_ms is not None else None
        if self._owns(node, ev.run_id):
            if node.status is NodeStatus.SKIPPED and node.last_run_id == ev.run_id:
                return
            node.status = NodeStatus.COMPLETED
            finish(node, ev.timestamp)
            node.error_message = node.error_type = None  # earlier attempts' failures stay in their events
        elif node.status is NodeStatus.SKIPPED:
            return
        started = self._attempt_started(ev, node)
        data = {
            "attempt": self._attempt(ev, node),
            "duration_seconds": None if started is None else attempt_seconds(started, ev.timestamp),
            "step_seconds": step_seconds,
            "output": self._output_seen.get((ev.run_id, node.node_id), node.outputs),
        }
        self._emit(ev, EventType.NODE_COMPLETED, node.node_id, data)

    def _attempt_started(self, ev: DagsterEventIn, node: NodeView) -> datetime | None:
        """When the attempt of ``node`` that ``ev`` ends started (this pass's start event, else the view's)."""
        seen = self._started_seen.get((ev.run_id, node.node_id))
        if seen is not None:
            return seen
        return node.started_at if node.last_run_id == ev.run_id else None

    def _failure_text(self, ev: DagsterEventIn) -> str | None:
        """The error a ``STEP_FAILURE`` records: the user's error, or who stopped an interrupted step."""
        if ev.error_type == INTERRUPTED:
            return stopped_text(self._run(ev.run_id), ev.timestamp)
        return ev.error_message

    def _step_failure(self, ev: DagsterEventIn, node: NodeView) -> None:
        error = self._failure_text(ev)
        if self._owns(node, ev.run_id):
            node.status = NodeStatus.FAILED
            finish(node, ev.timestamp)
            node.error_message, node.error_type = error, ev.error_type
            first_kept = node.node_type in HANDLER_GROUPS and self.view.error_message is not None
            if self._is_latest(ev.run_id) and not first_kept:  # a handler's failure never hides the first
                self.view.error_node_id, self.view.error_message = node.node_id, error
        data = {"error": error, "error_type": ev.error_type, "attempts": self._attempt(ev, node)}
        self._emit(ev, EventType.NODE_FAILED, node.node_id, data)


#: The step events the reducer folds, each with its handler: the one list of them (``STEP_EVENTS``).
STEP_HANDLERS: dict[str, Callable[[Reducer, DagsterEventIn, NodeView], None]] = {
    "STEP_START": Reducer._step_start,
    "STEP_RESTARTED": Reducer._step_restarted,
    "STEP_UP_FOR_RETRY": Reducer._step_up_for_retry,
    "STEP_OUTPUT": Reducer._step_output,
    "STEP_SUCCESS": Reducer._step_success,
    "STEP_FAILURE": Reducer._step_failure,
}
STEP_EVENTS = tuple(STEP_HANDLERS)
MIRRORED_TYPES = (RUN_START, *RUN_TERMINAL, *STEP_EVENTS)  # what a pass reads from Dagster's event log
