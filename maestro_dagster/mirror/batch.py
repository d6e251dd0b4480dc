"""Catching up many runs at once: ``mirror_run`` for a list of runs, a batch of runs per read and per write.

Used by the catch-up loop (``sync.py``), where most runs are finished and were never mirrored: each run costs
``mirror_run`` two Maestro transactions and a Dagster read whatever its size. Here a batch of runs is read from
Dagster with as few storage calls as the storage allows (``read_events_many``), before Maestro's write
transaction opens, and written in one transaction (executions created, events projected, cursors advanced).
Each run is projected exactly as ``mirror_run`` projects it (same cursor rule, same full pass of a finished run,
same ``project``), so the rows are the same and everything stays idempotent. A batch whose write fails is rolled
back and written again one run per transaction, so one run that cannot be mirrored holds back no other: it is
reported (``MirrorResult.error``) and retried by the next pass.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from dagster import DagsterInstance, DagsterRun, RunRecord
from sqlalchemy import select
from sqlalchemy.orm import Session

from maestro_dagster.db.models import ExecutionRun, WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.gc_tuning import fewer_collections
from maestro_dagster.mirror.fresh import FreshRun, write_fresh
from maestro_dagster.mirror.model import DagsterEventIn
from maestro_dagster.mirror.projector import MirrorResult, project
from maestro_dagster.mirror.reducer import needs_fresh_run
from maestro_dagster.mirror.source import FINISHED, is_maestro_run, read_events_many
from maestro_dagster.mirror.store import ensure_execution
from maestro_dagster.settings import Settings
from maestro_dagster.tags import TAG_WORKFLOW_ID, execution_id_of_run

BATCH_RUNS = 25  # runs per Dagster read and per Maestro write transaction
log = logging.getLogger(__name__)


@dataclass
class _Pending:
    """A run of the batch to project, with what was read of it before the write transaction."""

    record: RunRecord
    run: DagsterRun
    execution_id: str
    registered: bool  # its execution_runs row existed when the batch was read
    events: list[DagsterEventIn]


def mirror_runs(instance: DagsterInstance, records: list[RunRecord], settings: Settings) -> list[MirrorResult]:
    """``mirror_run`` of each run (``records`` as just listed, oldest first), in batches; results in that order."""
    batches = [records[start : start + BATCH_RUNS] for start in range(0, len(records), BATCH_RUNS)]
    results: list[MirrorResult] = []
    if not batches:
        return results
    # Batch i + 1 is read (Dagster's query, decoding) while batch i is written: the writer mostly waits on the
    # database, so the two overlap even on two cores.
    with fewer_collections(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="maestro-mirror-read") as pool:
        reading = pool.submit(_read_batch, instance, batches[0], settings)
        for i, batch in enumerate(batches):
            done, pending = reading.result()
            if i + 1 < len(batches):
                reading = pool.submit(_read_batch, instance, batches[i + 1], settings)
            if pending:
                done.update(_write_isolated(pending, settings))
            results.extend(done[r.dagster_run.run_id] for r in batch)
    return results


def _registered(session: Session, run_ids: list[str]) -> dict[str, tuple[str, int, bool, str | None]]:
    """run id -> (execution id, cursor, mirror complete, Dagster status) of the runs already registered."""
    rows = session.execute(
        select(
            ExecutionRun.run_id,
            ExecutionRun.execution_id,
            ExecutionRun.last_storage_id,
            ExecutionRun.mirror_complete,
            ExecutionRun.dagster_status,
        ).where(ExecutionRun.run_id.in_(run_ids))
    )
    return {run_id: (execution_id, cursor, complete, status) for run_id, execution_id, cursor, complete, status in rows}


def _read_batch(
    instance: DagsterInstance, records: list[RunRecord], settings: Settings
) -> tuple[dict[str, MirrorResult], list[_Pending]]:
    """What can be decided before writing (results by run id), and the runs to write with their events."""
    results: dict[str, MirrorResult] = {}
    maestro = [r for r in records if is_maestro_run(r.dagster_run)]
    for record in records:
        if not is_maestro_run(record.dagster_run):
            results[record.dagster_run.run_id] = MirrorResult(
                record.dagster_run.run_id, None, skipped_reason="not a Maestro job"
            )
    with get_db(settings) as session:
        known = _registered(session, [r.dagster_run.run_id for r in maestro])
    cursors: dict[str, int] = {}
    for record in maestro:
        run_id, finished = record.dagster_run.run_id, record.dagster_run.status in FINISHED
        row = known.get(run_id)
        if row is not None and row[2]:
            results[run_id] = MirrorResult(run_id, row[0], complete=True)
        else:
            cursors[run_id] = 0 if finished or row is None else row[1]
    events = read_events_many(instance, cursors) if cursors else {}
    pending: list[_Pending] = []
    for record in maestro:
        run, run_id = record.dagster_run, record.dagster_run.run_id
        if run_id not in cursors:
            continue
        row, run_events, finished = known.get(run_id), events[run_id], run.status in FINISHED
        if row is not None and not run_events and not finished and row[3] == run.status.value:
            results[run_id] = MirrorResult(run_id, row[0])  # a live pass that found nothing new writes nothing
            continue
        if not finished and needs_fresh_run(run_events):
            run = instance.get_run_by_id(run_id) or run  # its tags and status as new as these events
        execution_id = row[0] if row is not None else execution_id_of_run(instance, run)
        pending.append(_Pending(record, run, execution_id, row is not None, run_events))
    return results, pending


def _write_all(session: Session, pending: list[_Pending]) -> dict[str, MirrorResult]:
    """Write the batch in order; runs that qualify for ``write_fresh`` go in groups."""
    results: dict[str, MirrorResult] = {}
    registered = set(
        session.scalars(select(ExecutionRun.run_id).where(ExecutionRun.run_id.in_([p.run.run_id for p in pending])))
    )
    existing = set(
        session.scalars(select(WorkflowExecution.id).where(WorkflowExecution.id.in_({p.execution_id for p in pending})))
    )
    group: list[FreshRun] = []

    def flush_group() -> None:
        results.update((r.run_id, r) for r in write_fresh(session, group))
        group.clear()

    for item in pending:
        run_id = item.run.run_id
        fresh = (
            item.record.dagster_run.status in FINISHED
            and run_id not in registered
            and item.execution_id not in existing
        )
        if fresh:
            group.append(FreshRun(item.run, item.execution_id, _created(item.record), item.events))
            existing.add(item.execution_id)  # a later run of the same execution goes the ordinary way
            continue
        if group:
            flush_group()
        results[run_id] = _write(session, item)
    if group:
        flush_group()
    return results


def _write_isolated(pending: list[_Pending], settings: Settings) -> dict[str, MirrorResult]:
    try:
        with get_db(settings, immediate=True) as session:
            return _write_all(session, pending)
    except Exception as exc:
        if len(pending) == 1:
            run_id = pending[0].run.run_id
            log.error("maestro mirror of run %s failed (retried on the next pass): %s", run_id, exc)
            return {run_id: MirrorResult(run_id, pending[0].execution_id, error=f"{type(exc).__name__}: {exc}")}
        log.warning("maestro mirror: a batch of %d runs failed (%s); writing them one by one", len(pending), exc)
    results: dict[str, MirrorResult] = {}
    for item in pending:
        results.update(_write_isolated([item], settings))
    return results


def _created(record: RunRecord) -> datetime:
    return record.create_timestamp or datetime.now(UTC)


def _write(session: Session, item: _Pending) -> MirrorResult:
    run, run_id = item.run, item.run.run_id
    complete = item.record.dagster_run.status in FINISHED  # as when its events were read (a full pass)
    if item.registered:
        run_row = session.get(ExecutionRun, run_id)
        assert run_row is not None, f"run {run_id} was registered when its batch was read"
    else:
        run_row = ensure_execution(session, run, item.execution_id, _created(item.record), run.tags[TAG_WORKFLOW_ID])
        if run_row is None:
            return MirrorResult(run_id, item.execution_id, skipped_reason="workflow definition not stored")
    if run_row.mirror_complete:  # another process completed it meanwhile
        return MirrorResult(run_id, run_row.execution_id, complete=True)
    project(session, run_row.execution_id, run, item.events, complete=complete)
    return MirrorResult(run_id, run_row.execution_id, events_read=len(item.events), complete=complete)
