"""Mirroring from inside the run: an executor wrapper that follows its own run while it executes.

Every Maestro job's executor is wrapped (``mirrored_executor``). In the process that orchestrates the run
(for ``dagster job execute``, ``maestro run``, or a run worker launched by the webserver or daemon) it starts a
thread that projects new events as they are stored: it sleeps until the run stores an event of a type the mirror
reads (every event the executor hands on, whichever process stored it, and every event this process stores), then
makes a pass over all the events stored meanwhile, at most one pass per ``POLL_SECONDS`` (a pass per event would
cost the run far more). A run that stores nothing (long nodes) costs no pass at all, except one whose steps run
on Celery workers (their events reach this process only with a step's result): it also passes once per
``REMOTE_POLL_SECONDS``. The lag of an event is at most about one interval plus a pass. The run's terminal event
triggers the final pass before the process exits. A mirror
error never fails the run: whatever a failed write left behind is picked up by the catch-up loop (the daemon's
sensor, ``maestro mirror sync``). The run's worker pid and host are recorded as run tags so the catch-up loop can
fail a run whose process died (see ``sync.py``), and so a step process of that worker ends when the worker dies
(``exit_with_run_worker``) instead of running its node on, and writing events, after the run was reported failed.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, ExecutorDefinition

from maestro_dagster.db.retry import is_locked
from maestro_dagster.mirror.live_view import LiveState
from maestro_dagster.mirror.projector import mirror_run
from maestro_dagster.mirror.reducer import MIRRORED_TYPES, SLA_EVENT
from maestro_dagster.spec.sla import META_SLA_MISSED
from maestro_dagster.step_processes import DelegatingExecutor, hands_on_events_live, wrapped_executor
from maestro_dagster.tags import TAG_WORKER_HOST, TAG_WORKER_PID

log = logging.getLogger(__name__)
TERMINAL_EVENTS = ("PIPELINE_SUCCESS", "PIPELINE_FAILURE", "PIPELINE_CANCELED")
POLL_SECONDS = 0.5
REMOTE_POLL_SECONDS = 1.0  # steps elsewhere (Celery): a pass at least this often while the run goes on
_watched_worker: int | None = None
_watch_lock = threading.Lock()


def _is_sla_record(event_type: str, entry: Any) -> bool:
    """Is this stored entry a missed SLA's engine event (``compiler/sla.py``)?"""
    data = getattr(getattr(entry, "dagster_event", None), "event_specific_data", None)
    return event_type == SLA_EVENT and META_SLA_MISSED in (getattr(data, "metadata", None) or {})


class LiveMirror:
    """Keeps one run's rows within about a second of its event log, from the orchestrating process."""

    def __init__(
        self,
        instance: DagsterInstance,
        run_id: str,
        interval: float = POLL_SECONDS,
        run: DagsterRun | None = None,
        idle_poll: float | None = None,
    ) -> None:
        self.instance, self.run_id, self.interval = instance, run_id, interval
        self.idle_poll = idle_poll  # also a pass after this long without news (steps whose events come late)
        self.run = run  # the run as it started: periodic passes need not read it again (see ``mirror_run``)
        self.state = LiveState()  # the view kept between periodic passes (see ``live_view.py``)
        self._stop = threading.Event()
        self._new_events = threading.Event()  # set when the run stored an event the mirror reads
        self._lock = threading.Lock()
        self._finished = False
        self._thread = threading.Thread(target=self._loop, name=f"maestro-mirror-{run_id[:8]}", daemon=True)

    def start(self) -> None:
        self.instance.add_event_listener(self.run_id, self.on_event)
        self._new_events.set()  # the run's start is stored already: the first pass mirrors it at once
        self._thread.start()

    def on_event(self, entry: Any) -> None:
        """An event this process stored: the terminal one triggers the final pass, others the next periodic pass."""
        event_type = getattr(entry, "dagster_event_type", None)
        if event_type is None:
            return
        if event_type.value in TERMINAL_EVENTS:
            self.finish()
        elif event_type.value in MIRRORED_TYPES or _is_sla_record(event_type.value, entry):
            self._new_events.set()  # a missed SLA is mirrored while the run goes on, even when nothing else happens

    def saw(self, event: Any) -> None:
        """An event the executor handed on (stored by a step process, or by this one): a pass is due if the mirror
        reads its type."""
        if getattr(event, "event_type_value", None) in MIRRORED_TYPES:
            self._new_events.set()

    def pass_once(self, periodic: bool = False) -> None:
        with self._lock:
            periodic = periodic and not self._finished
            known = self.run if periodic else None
            try:
                mirror_run(self.instance, self.run_id, known=known, live=self.state)
            except Exception as exc:  # never fail the run; the next pass (or the catch-up loop) repairs
                self.state.reset()  # the next pass starts from the tables again
                # a locked SQLite database is routine with many writers: the next pass simply tries again
                report = log.info if periodic and is_locked(exc) else log.warning
                report("maestro mirror of run %s failed (will be caught up later): %s", self.run_id, exc)

    def _loop(self) -> None:
        # A pass only once new events are stored, and at most one per interval (counted from the start of the
        # previous pass), never one per event: a pass costs milliseconds whatever it reads, and passes competing
        # with the run's own thread slowed it down.
        while True:
            self._new_events.wait(self.idle_poll)
            if self._stop.is_set():
                return
            started = time.monotonic()
            self._new_events.clear()  # events stored during the pass make the next one due
            self.pass_once(periodic=True)
            if self._stop.wait(max(0.0, self.interval - (time.monotonic() - started))):
                return

    def stop(self) -> None:
        self._stop.set()
        self._new_events.set()  # wakes the loop, which sees the stop
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=30)

    def finish(self) -> None:
        """The run reached its end: stop polling and make the final, full pass."""
        if self._finished:
            return
        self._finished = True
        self.stop()
        self.pass_once()


class MirroringExecutor(DelegatingExecutor):
    def execute(self, plan_context: Any, execution_plan: Any) -> Iterator[Any]:
        instance, run_id = plan_context.instance, plan_context.run_id
        try:
            instance.add_run_tags(run_id, {TAG_WORKER_PID: str(os.getpid()), TAG_WORKER_HOST: socket.gethostname()})
        except Exception as exc:  # pragma: no cover - storage trouble; the run itself goes on
            log.warning("could not tag run %s with its worker pid: %s", run_id, exc)
        # The plan is executing, so the run has started (the context's copy may predate that status).
        # Steps on other machines (Celery) store events this process hears of only when the step is done: passes
        # on a clock then, so a node shows running while it runs.
        idle_poll = None if hands_on_events_live(self._inner) else REMOTE_POLL_SECONDS
        started = plan_context.dagster_run.with_status(DagsterRunStatus.STARTED)
        live = LiveMirror(instance, run_id, run=started, idle_poll=idle_poll)
        live.start()
        events = self._inner.execute(plan_context, execution_plan)
        try:
            for event in events:
                live.saw(event)
                yield event
        finally:
            close = getattr(events, "close", None)  # as ``yield from`` would: the inner executor's clean-up runs now
            if close is not None:
                close()
            live.stop()
            live.pass_once()


def mirrored_executor(inner: ExecutorDefinition) -> ExecutorDefinition:
    """``inner`` (same name and config) whose executions mirror themselves."""
    return wrapped_executor(
        inner, MirroringExecutor, f"{inner.description or inner.name} (mirrored into Maestro's tables)"
    )


def exit_with_run_worker(instance: DagsterInstance, run: DagsterRun | None) -> bool:
    """In a step process of this run's worker (multiprocess executor): never start the node once the worker is gone
    or the run is over, and exit when the worker dies later.

    Without it a step process outlives a killed worker: it finishes its node and writes ``STEP_SUCCESS`` (or
    failure) after the run was reported failed; no mirror pass reads events of a finished run again, and a
    re-execution from failure would run the node a second time alongside it. Called when the step's resources
    are built, before the node runs. The step's ``multiprocessing.parent_process()`` is the worker whether the step
    was spawned by it or forked by its forkserver (``step_processes.py``), and its sentinel becomes ready when the
    worker dies (the forkserver's own pid is the step's parent pid, and outlives the worker while steps run):
    - a step whose worker already died exits at once, whatever the tags say (it died while the step was starting);
    - a step of a run that is already finished (failed by its launcher or run monitoring) exits at once;
    - otherwise, when the worker is the run's worker (pid and host tags), a thread waiting on the worker's sentinel
      exits this process as soon as the worker dies. The worker itself (in-process executor) is never affected.
    Returns whether this process is watching its worker.
    """
    global _watched_worker
    parent = multiprocessing.parent_process()
    if run is None or parent is None:
        return False
    if not parent.is_alive():
        _end_step(f"its parent process {parent.pid} (the run's worker) died before the node started", run.run_id)
    with _watch_lock:
        if _watched_worker == parent.pid:
            return True
    try:
        fresh = instance.get_run_by_id(run.run_id)  # the step's copy of the run predates the worker's tags
    except Exception as exc:  # storage trouble: the step goes on, unwatched
        log.warning("could not read run %s to check its worker: %s", run.run_id, exc)
        return False
    if fresh is not None and fresh.is_finished:
        _end_step(f"the run is already {fresh.status.value}", run.run_id)
    tags = fresh.tags if fresh is not None else run.tags
    pid, host = tags.get(TAG_WORKER_PID), tags.get(TAG_WORKER_HOST)
    if pid != str(parent.pid) or host != socket.gethostname():
        return False
    with _watch_lock:
        if _watched_worker == parent.pid:
            return True
        _watched_worker = parent.pid
    threading.Thread(
        target=_watch_worker, args=(parent, run.run_id), name=f"maestro-worker-watch-{parent.pid}", daemon=True
    ).start()
    return True


def _end_step(reason: str, run_id: str) -> None:
    """End this step process now, before (or while) its node runs, writing nothing more."""
    log.error("step process %s of run %s ends without running its node: %s", os.getpid(), run_id, reason)
    logging.shutdown()
    os._exit(1)


def _watch_worker(parent: BaseProcess, run_id: str) -> None:
    wait([parent.sentinel])  # ready when the worker is gone (it may have died while the watch was being armed)
    _end_step(f"the worker (pid {parent.pid}) died", run_id)
