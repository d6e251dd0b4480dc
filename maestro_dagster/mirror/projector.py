"""The one mirror primitive: project the not-yet-mirrored events of run R into Maestro's tables.

Used by the run itself (``live.py``) and the terminal pass; the catch-up loop (the daemon's sensor and
``maestro mirror sync``) mirrors runs in batches (``batch.py``) by the same rules, through ``project``.
While the run is alive only events after the run's cursor are read; once it is
finished, one full pass re-reads all of its events (catching any that committed out of order) and marks
the run ``mirror_complete``. Dagster is read before Maestro's write transaction opens, so the write lock is
held only while rows are written. Everything is idempotent: running it twice, or from two processes at
once, gives the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunRecord
from sqlalchemy.orm import Session

from maestro_dagster.db.models import ExecutionRun
from maestro_dagster.db.session import get_db
from maestro_dagster.mirror.live_view import LiveState, save_changes, view_for
from maestro_dagster.mirror.model import DagsterEventIn, ExecutionView, RunFacts
from maestro_dagster.mirror.reducer import Reducer, needs_fresh_run
from maestro_dagster.mirror.source import FINISHED, is_maestro_run, read_events
from maestro_dagster.mirror.store import ensure_execution
from maestro_dagster.names import base_node_id, dagster_name
from maestro_dagster.settings import Settings, get_settings
from maestro_dagster.tags import TAG_CANCELLED_BY, TAG_PAUSE, TAG_WORKFLOW_ID, execution_id_of_run


@dataclass(frozen=True)
class MirrorResult:
    run_id: str
    execution_id: str | None
    events_read: int = 0
    complete: bool = False
    skipped_reason: str | None = None
    error: str | None = None  # the catch-up loop could not mirror it (it is retried on the next pass)


def _prepare(
    session: Session, instance: DagsterInstance, run: DagsterRun, record: RunRecord | None
) -> tuple[ExecutionRun | None, str]:
    """The run's ``execution_runs`` row; on the run's first pass, register it (and create its execution)."""
    run_row = session.get(ExecutionRun, run.run_id)
    if run_row is not None:
        return run_row, run_row.execution_id
    execution_id = execution_id_of_run(instance, run)
    record = record or instance.get_run_record_by_id(run.run_id)
    created = record.create_timestamp if record is not None else datetime.now(UTC)
    return ensure_execution(session, run, execution_id, created, run.tags[TAG_WORKFLOW_ID]), execution_id


def run_facts(run: DagsterRun) -> RunFacts:
    """The run's ``RunFacts`` as ``run`` (read after the events they serve, see ``needs_fresh_run``) shows them."""
    return RunFacts(
        pause_requested=run.tags.get(TAG_PAUSE) == "true",
        cancelled_by=run.tags.get(TAG_CANCELLED_BY) or None,
        termination_requested=run.status in (DagsterRunStatus.CANCELING, DagsterRunStatus.CANCELED),
        selected_steps=frozenset(run.step_keys_to_execute) if run.step_keys_to_execute else None,
    )


def apply_events(view: ExecutionView, events: list[DagsterEventIn], facts: Mapping[str, RunFacts | bool]) -> Reducer:
    """Apply ``events`` to ``view``; ``facts``: per run id, its ``RunFacts`` (a bare bool: only a pause flag)."""
    for run_id, given in facts.items():
        if run_id in view.runs:
            given = given if isinstance(given, RunFacts) else RunFacts(pause_requested=given)
            run = view.runs[run_id]
            run.pause_requested, run.cancelled_by = given.pause_requested, given.cancelled_by
            run.termination_requested, run.selected_steps = given.termination_requested, given.selected_steps
    reducer = Reducer(view, {dagster_name(n): n for n in view.nodes if n == base_node_id(n)})
    for event in events:
        reducer.apply(event)
    view.refresh_counts()
    return reducer


def mirror_run(
    instance: DagsterInstance,
    run_id: str,
    settings: Settings | None = None,
    *,
    known: DagsterRun | RunRecord | None = None,
    live: LiveState | None = None,
) -> MirrorResult:
    """Mirror run ``run_id``; safe to call any number of times, from any process.

    ``known``: what the caller has just read of the run (the catch-up loop's listing), or the run as it started
    (the live mirror's periodic passes), so that it is not read again. A run it shows (or showed before its
    events were read) as not ended is read again only if the events include its end or an interrupted step:
    its tags and status (``RunFacts``: who stopped it) must be as new as those events.
    ``live``: the live mirror's state of this run (``live_view.py``) for its periodic passes while it is going.
    """
    settings = settings or get_settings()
    record: RunRecord | None
    run: DagsterRun | None
    if isinstance(known, RunRecord):
        record, run = known, known.dagster_run
    else:
        record, run = None, known
    if run is None:
        record = instance.get_run_record_by_id(run_id)  # the run and its create time, in one read
        if record is None:
            return MirrorResult(run_id, None, skipped_reason="no such Dagster run")
        run = record.dagster_run
    if not is_maestro_run(run):
        return MirrorResult(run_id, None, skipped_reason="not a Maestro job")
    finished = run.status in FINISHED
    if live is not None and live.complete:  # this live mirror already made the run's full pass
        return MirrorResult(run_id, live.execution_id, complete=True)

    if live is not None and live.execution_id is not None:  # a later pass of the live mirror: nothing to read
        execution_id, cursor = live.execution_id, 0 if finished else live.cursor
        unchanged_status = live.dagster_status == run.status.value
    else:
        with get_db(settings, immediate=True) as session:
            run_row, execution_id = _prepare(session, instance, run, record)
            if run_row is None:
                return MirrorResult(run_id, execution_id, skipped_reason="workflow definition not stored")
            if run_row.mirror_complete:
                return MirrorResult(run_id, execution_id, complete=True)
            cursor = 0 if finished else run_row.last_storage_id
            unchanged_status = run_row.dagster_status == run.status.value
        live = live if not finished else None  # a first pass of a finished run is an ordinary full pass

    events = read_events(instance, run_id, cursor)
    if not events and not finished and unchanged_status:  # a live pass that found nothing new writes nothing
        return MirrorResult(run_id, execution_id)
    if not finished and needs_fresh_run(events):  # the run as read may predate them (its tags, its status)
        run = instance.get_run_by_id(run_id) or run

    new_cursor = max(cursor, events[-1].storage_id) if events else cursor
    if live is not None:  # a full pass re-reads from 0: the cursor never moves back
        new_cursor = max(new_cursor, live.cursor)
    with get_db(settings, immediate=True) as session:
        if live is None:
            project(session, execution_id, run, events, complete=finished)
        else:
            # On the run's full pass (finished: every event read again, out-of-order ones included) the replay
            # on the kept view offers again the rows of events this mirror already wrote: the same rows
            # (``reducer.py``), so only the others are inserted.
            cached = view_for(session, live, execution_id)
            reducer = apply_events(cached.view, events, {run_id: run_facts(run)})
            rows = [e for e in reducer.events if e.storage_id not in live.written] if finished else reducer.events
            save_changes(
                session, cached, rows, reducer.artifacts, run_id, run.status.value, new_cursor, complete=finished
            )
    if live is not None:
        live.execution_id, live.dagster_status = execution_id, run.status.value
        live.cursor, live.complete = new_cursor, finished
        live.written.update(e.storage_id for e in events)
    return MirrorResult(run_id, execution_id, events_read=len(events), complete=finished)


def project(
    session: Session, execution_id: str, run: DagsterRun, events: list[DagsterEventIn], *, complete: bool
) -> None:
    """Apply ``events`` of ``run`` to its execution's rows and advance its cursor: a view loaded for this pass,
    written by the one writer of an existing execution's rows (``live_view.save_changes``).

    ``complete``: ``events`` are all of the run's events, read once it had finished (the full pass).
    """
    loaded = view_for(session, LiveState(), execution_id)
    reducer = apply_events(loaded.view, events, {run.run_id: run_facts(run)})
    cursor = events[-1].storage_id if events else 0  # the cursor never moves back (save_changes keeps the max)
    save_changes(session, loaded, reducer.events, reducer.artifacts, run.run_id, run.status.value, cursor,
                 complete=complete)  # fmt: skip
