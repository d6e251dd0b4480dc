"""Retrying a short write that met a locked SQLite database, within a bound.

SQLite lets one writer in at a time. Each connection already waits ``MAESTRO_SQLITE_BUSY_TIMEOUT`` for the lock,
but with many writers at once (e.g. 20 ``maestro run`` starting together on a 2-core machine) a writer can wait
past it: SQLite's busy handler is not fair. ``retry_locked`` runs the whole transaction again (each try is atomic:
a failed one wrote nothing) until ``MAESTRO_SQLITE_LOCK_WAIT_SECONDS`` have passed, then fails with one message
that says what stayed locked and what to do. On PostgreSQL, and for any other error, it does not retry.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from maestro_dagster.errors import DatabaseError
from maestro_dagster.settings import Settings

T = TypeVar("T")
FIRST_PAUSE_SECONDS = 0.05
LONGEST_PAUSE_SECONDS = 2.0


def is_locked(exc: BaseException) -> bool:
    """Is ``exc`` (or an error it was raised from) SQLite's "database is locked" / "database is busy"?"""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for candidate in (current, getattr(current, "orig", None)):
            if isinstance(candidate, sqlite3.OperationalError) and any(
                word in str(candidate).lower() for word in ("database is locked", "database is busy")
            ):
                return True
        current = current.__cause__ or current.__context__
    return False


def locked_error(settings: Settings, what: str, waited: float) -> DatabaseError:
    return DatabaseError(
        f"{what}: Maestro's SQLite database {settings.masked_database_url} stayed locked by other writers for "
        f"{waited:.0f} s (MAESTRO_SQLITE_LOCK_WAIT_SECONDS={settings.sqlite_lock_wait_seconds:g}); nothing was "
        "written. Retry, start fewer runs at once, raise MAESTRO_SQLITE_LOCK_WAIT_SECONDS, or move to PostgreSQL "
        "for this many concurrent writers (docs/operations.md, 'SQLite with several writers').",
        details={"url": settings.masked_database_url, "waited_seconds": round(waited, 1)},
    )


def retry_locked(fn: Callable[[], T], settings: Settings, what: str) -> T:
    """``fn()``, run again while it fails on a locked SQLite database, for at most the settings' bound."""
    started = time.monotonic()
    pause = FIRST_PAUSE_SECONDS
    while True:
        try:
            return fn()
        except Exception as exc:
            if settings.backend != "sqlite" or not is_locked(exc):
                raise
            waited = time.monotonic() - started
            if waited >= settings.sqlite_lock_wait_seconds:
                raise locked_error(settings, what, waited) from None
            time.sleep(min(pause * random.uniform(0.5, 1.5), max(settings.sqlite_lock_wait_seconds - waited, 0)))
            pause = min(pause * 2, LONGEST_PAUSE_SECONDS)
