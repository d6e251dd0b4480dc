"""Reading Dagster: the events of runs after their cursors (decoded by ``decode.py``); which runs to mirror."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager as ContextManager
from datetime import datetime
from typing import cast

from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus, RunRecord, RunsFilter
from dagster._core.storage.event_log.base import EventLogCursor
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import Connection, Engine, NullPool, and_, create_engine, or_, select

from maestro_dagster.mirror.decode import decode_event, to_event_in
from maestro_dagster.mirror.model import DagsterEventIn
from maestro_dagster.mirror.reducer import MIRRORED_TYPES, SLA_EVENT
from maestro_dagster.spec.sla import META_SLA_MISSED
from maestro_dagster.tags import META_SKIPPED, TAG_WORKFLOW_ID

_TYPES = {DagsterEventType(t) for t in (*MIRRORED_TYPES, SLA_EVENT)}
PAGE = 5000
RUNS_PER_QUERY = 50  # runs whose events one query reads (a single-database event log)
FINISHED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)


def is_maestro_run(run: DagsterRun) -> bool:
    return bool(run.tags.get(TAG_WORKFLOW_ID))


def read_events(instance: DagsterInstance, run_id: str, after_storage_id: int = 0) -> list[DagsterEventIn]:
    """Every mirrored-type event of ``run_id`` with a storage id above ``after_storage_id``, in order."""
    return read_events_many(instance, {run_id: after_storage_id})[run_id]


def read_events_many(instance: DagsterInstance, cursors: dict[str, int]) -> dict[str, list[DagsterEventIn]]:
    """``read_events`` of several runs (run id -> storage id to read after), with as few storage calls as it can.

    On a SQL event log (every storage Dagster ships) the rows are selected directly, as Dagster's
    ``get_records_for_run`` does (same table, same filters, in storage id order), and decoded by
    ``decode.decode_event``; on PostgreSQL (and any single-database event log) one query serves a batch of runs,
    on Dagster's default SQLite storage (a database file per run) one query per run. Other storages go through
    ``get_records_for_run``.
    """
    out: dict[str, list[DagsterEventIn]] = {run_id: [] for run_id in cursors}
    storage = instance.event_log_storage
    if not isinstance(storage, SqlEventLogStorage):
        for run_id, after in cursors.items():
            out[run_id] = _read_through_api(instance, run_id, after)
        return out
    if isinstance(storage, SqliteEventLogStorage):  # one database file per run
        groups = [{run_id: after} for run_id, after in cursors.items()]
    else:
        groups = [dict(list(cursors.items())[i : i + RUNS_PER_QUERY]) for i in range(0, len(cursors), RUNS_PER_QUERY)]
    for group in groups:
        for run_id, storage_id, raw in _select_rows(storage, group):
            event = decode_event(storage_id, raw)
            if event is not None:
                out[run_id].append(event)
    return out


def _select_rows(storage: SqlEventLogStorage, cursors: dict[str, int]) -> Iterator[tuple[str, int, str]]:
    """(run id, storage id, serialized event) of the mirrored-type rows after each run's cursor, by storage id."""
    table = SqlEventLogStorageTable
    per_run = [
        and_(table.c.run_id == run_id, table.c.id > after) if after else table.c.run_id == run_id
        for run_id, after in cursors.items()
    ]
    query = (
        select(table.c.run_id, table.c.id, table.c.event)
        .where(or_(*per_run) if len(per_run) > 1 else per_run[0])
        .where(
            or_(
                table.c.dagster_event_type.in_(MIRRORED_TYPES),
                # engine events: only a missed SLA's record and a skipped run's (decode.py reads nothing else)
                and_(
                    table.c.dagster_event_type == SLA_EVENT,
                    or_(table.c.event.contains(META_SLA_MISSED), table.c.event.contains(META_SKIPPED)),
                ),
            )
        )
        .order_by(table.c.id.asc())
        .limit(PAGE)
    )
    last = 0
    while True:
        with _connection(storage, next(iter(cursors))) as conn:
            rows = conn.execute(query.where(table.c.id > last) if last else query).fetchall()
        yield from ((run_id, storage_id, raw) for run_id, storage_id, raw in rows)
        if len(rows) < PAGE:
            return
        last = rows[-1][1]


def _connection(storage: SqlEventLogStorage, run_id: str) -> ContextManager[Connection]:
    """A connection to read ``run_id``'s events through an engine of the mirror's own, kept per process.

    The mirror reads a running run's events every half second. Dagster's storages build a connection for
    every call: its PostgreSQL event log opens a new server connection (its engine has no pool), its SQLite
    event log creates an engine (so every query is compiled again) under a lock that the run's own event
    writes wait for. Here PostgreSQL is read through a small pool (checked before use) and a run's SQLite file
    through a cached engine; anything else (a file not created yet, another storage) goes through Dagster.
    """
    if isinstance(storage, SqliteEventLogStorage):
        path = os.path.abspath(storage.path_for_shard(run_id))
        if os.path.exists(path):
            return _engine(f"sqlite:///{path}", os.getpid()).connect()
        return cast(ContextManager[Connection], storage.run_connection(run_id))  # annotated Any by Dagster
    # dagster-postgres is not imported for this check: importing it costs a process about half a second.
    url = getattr(storage, "postgres_url", None)
    postgres = type(storage).__name__ == "PostgresEventLogStorage" and isinstance(url, str)
    if not postgres or getattr(storage, "_token_provider", None) is not None:
        return storage.run_connection(run_id)
    return _engine(url, os.getpid()).connect()


@functools.lru_cache(maxsize=64)
def _engine(url: str, pid: int) -> Engine:
    del pid  # in the key only: a forked process (a step subprocess) builds its own
    if url.startswith("sqlite"):
        return create_engine(url, poolclass=NullPool, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
    return create_engine(url, pool_size=1, max_overflow=4, pool_pre_ping=True, isolation_level="AUTOCOMMIT")


def _read_through_api(instance: DagsterInstance, run_id: str, after_storage_id: int) -> list[DagsterEventIn]:
    cursor = EventLogCursor.from_storage_id(after_storage_id).to_string() if after_storage_id else None
    out: list[DagsterEventIn] = []
    while True:
        conn = instance.get_records_for_run(run_id, cursor=cursor, of_type=_TYPES, limit=PAGE)
        for record in conn.records:
            event = to_event_in(record)
            if event is not None:
                out.append(event)
        if not conn.has_more:
            return out
        cursor = conn.cursor


def iter_maestro_run_records(
    instance: DagsterInstance, *, updated_after: datetime | None = None
) -> Iterator[RunRecord]:
    """The records (run and create time) of the runs ``iter_maestro_runs`` lists."""
    filters = RunsFilter(updated_after=updated_after) if updated_after else None
    for record in instance.get_run_records(filters=filters, ascending=True):
        if is_maestro_run(record.dagster_run):
            yield record


def iter_maestro_runs(instance: DagsterInstance, *, updated_after: datetime | None = None) -> Iterator[DagsterRun]:
    """Runs of Maestro jobs (tagged with a workflow id), oldest first; only those updated after a time if given."""
    for record in iter_maestro_run_records(instance, updated_after=updated_after):
        yield record.dagster_run
