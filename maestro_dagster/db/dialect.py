"""Every difference between PostgreSQL and SQLite that Maestro's statements depend on, in one thin place.

This module owns: which database a session talks to (``is_postgresql``); the dialect's INSERT construct and its
``ON CONFLICT`` clauses (``insert_for``, ``insert_ignore``, ``upsert``); the row lock PostgreSQL takes and SQLite,
which has one writer at a time, needs not (``for_update``); ``NOTIFY``, which only PostgreSQL has (``notify``); and
the reporting expressions: seconds between two timestamps (``seconds_between``) and percentiles, which SQLite has
not (``percentile``).
Callers (the repositories, the mirror's store) hold no dialect branch and import no dialect. Everything takes the
caller's session and never commits. A leaf below the mirror: it imports nothing from Maestro.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import CursorResult, Float, Select, func, null, text
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

S = TypeVar("S", bound=Select)

_NOTIFY = text("SELECT pg_notify(:channel, x) FROM unnest(CAST(:ids AS text[])) AS x")


def is_postgresql(session: Session) -> bool:
    """True when ``session`` talks to PostgreSQL (else it is SQLite, the only other supported backend)."""
    return session.get_bind().dialect.name == "postgresql"


def _insert(postgresql: bool, table: Any) -> Any:
    """The dialect's ``INSERT INTO table``; each dialect's module imported when first used (a SQLite process never
    imports PostgreSQL's, which costs a CLI command's start tens of milliseconds)."""
    if postgresql:
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def insert_for(session: Session, table: Any) -> Any:
    """``INSERT INTO table`` in the session's dialect: the construct that has ``on_conflict_do_nothing/update``."""
    return _insert(is_postgresql(session), table)


def for_update(session: Session, stmt: S) -> S:
    """``stmt ... FOR UPDATE`` on PostgreSQL (two writers of the same rows take turns); as it is on SQLite."""
    return stmt.with_for_update() if is_postgresql(session) else stmt


def insert_ignore(session: Session, table: Any, values: dict[str, Any]) -> bool:
    """INSERT one row ... ON CONFLICT DO NOTHING; True when the row was inserted."""
    result = session.execute(insert_for(session, table).values(**values).on_conflict_do_nothing())
    return bool(cast(CursorResult[Any], result).rowcount)  # an INSERT's result is a CursorResult


def upsert(session: Session, table: Any, rows: list[dict[str, Any]], update: tuple[str, ...] = ()) -> None:
    """INSERT ``rows`` (all with the same keys); on a conflict do nothing, or on the primary key update ``update``
    (set from the offered row)."""
    if not rows:
        return
    postgresql = is_postgresql(session)
    stmt = _upsert_statement(postgresql, table, update)
    if postgresql:
        session.execute(stmt, rows).close()  # the RETURNING rows, never read
    else:
        session.execute(stmt, rows)


@functools.cache
def _upsert_statement(postgresql: bool, table: Any, update: tuple[str, ...]) -> Any:
    """Built once per dialect, table and update list (building ``excluded`` costs more than a small insert)."""
    stmt = _insert(postgresql, table)
    if update:
        pk = [c.name for c in table.primary_key]
        stmt = stmt.on_conflict_do_update(index_elements=pk, set_={f: stmt.excluded[f] for f in update})
    else:
        stmt = stmt.on_conflict_do_nothing()
    if postgresql:
        # Without RETURNING, SQLAlchemy sends an INSERT ... ON CONFLICT with many rows as psycopg2's executemany:
        # one round trip per row. With it, the rows go as a few multi-row statements ("insertmanyvalues").
        return stmt.returning(*table.primary_key)
    return stmt


def notify(session: Session, channel: str, payloads: Sequence[str]) -> bool:
    """``pg_notify(channel, p)`` for each payload, delivered when the transaction commits, in one statement.
    SQLite has no NOTIFY: nothing is sent there. True when notifications were queued."""
    if not payloads or not is_postgresql(session):
        return False
    session.execute(_NOTIFY, {"channel": channel, "ids": list(payloads)})
    return True


def seconds_between(session: Session, start: Any, end: Any) -> ColumnElement[float]:
    """``end - start`` in seconds, rounded to milliseconds (SQLite's ``julianday`` is exact to about 50 µs, so both
    databases give the same figure; migration 0006's views round the same way), NULL when either is NULL."""
    if is_postgresql(session):
        return sql_cast(func.round(func.extract("epoch", end - start), 3), Float)
    return func.round((func.julianday(end) - func.julianday(start)) * 86400.0, 3)


def percentile(session: Session, fraction: float, expr: Any, where: Any) -> ColumnElement[float | None]:
    """The continuous ``fraction`` percentile of ``expr`` over the group's rows matching ``where`` (PostgreSQL's
    ``percentile_cont``); NULL on SQLite, which has no percentile aggregate."""
    if is_postgresql(session):
        return sql_cast(func.percentile_cont(fraction).within_group(expr).filter(where), Float)
    return sql_cast(null(), Float)
