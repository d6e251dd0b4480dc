"""What a database failure is told as: one ``DatabaseError`` naming the database (password masked), what is wrong
in a few words, and the fix; never the driver's multi-line text.

``database_error_of`` finds the failure in an exception or what caused it, wherever it was raised: Maestro's
sessions and migrations, or Dagster's own storage (a ``DagsterPostgresException`` after its retries carries the
driver's error). Errors of Maestro's engines are marked (``mark_ours``) so the message names the right database:
on SQLite, Dagster's storage lives in other files. A reason code goes in ``details['reason']`` (``refused``,
``timeout``, ``auth``, ``no_database``, ``not_migrated``, ``read_only``, ``permission``, ``locked``, ``lost``, ...).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

from maestro_dagster.errors import DatabaseError, NotMigratedError
from maestro_dagster.settings import Settings, get_settings

OURS = "maestro_database"  # set on the errors raised by Maestro's own engines
SERVER_SETTINGS = "POSTGRES_HOST/PORT/USER/PASSWORD/DB (or MAESTRO_DATABASE_URL)"
# PostgreSQL error codes (SQLSTATE) that are database failures, not bugs.
_PG_CODES = {
    "42P01": "not_migrated", "3F000": "not_migrated", "25006": "read_only", "42501": "permission",
    "3D000": "no_database", "28P01": "auth", "28000": "auth", "53300": "too_many", "57P01": "lost",
    "57P02": "lost", "57P03": "lost", "08006": "lost", "08003": "lost", "08001": "refused",
}  # fmt: skip
# Words of a connection-level (operational) driver message, and a phrase it must also hold; the first match wins.
_WORDS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("not_migrated", ("no such table",), ""),
    ("read_only", ("readonly database", "read-only transaction"), ""),
    ("locked", ("database is locked", "database table is locked"), ""),
    ("refused", ("connection refused",), ""),
    ("timeout", ("timeout expired", "timed out"), ""),
    ("unknown_host", ("could not translate host name", "name or service not known"), ""),
    ("auth", ("authentication failed", "no password supplied", "password is required"), ""),
    ("auth", ('role "',), "does not exist"),
    ("no_database", ('database "',), "does not exist"),
    ("too_many", ("too many connections", "remaining connection slots"), ""),
    ("lost", ("starting up", "shutting down", "server closed the connection", "terminating connection",
              "connection already closed", "could not receive data", "no connection to the server",
              "recovery mode", "connection reset", "ssl syscall"), ""),
    ("cannot_open", ("unable to open database file",), ""),
)  # fmt: skip


def mark_ours(engine: Engine) -> Engine:
    """Mark every error ``engine`` raises as one of the Maestro database (see the module doc)."""

    @event.listens_for(engine, "handle_error")
    def mark(context: Any) -> None:
        with contextlib.suppress(AttributeError):
            setattr(context.sqlalchemy_exception, OURS, True)

    return engine


def sqlite_file_missing(settings: Settings) -> Path | None:
    """The path of the Maestro SQLite database when that file does not exist (else None)."""
    url = settings.database_url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    path = Path(url.database)
    return None if path.exists() else path


def missing_file_error(settings: Settings, path: Path) -> NotMigratedError:
    message = (
        f"The Maestro database {path} does not exist yet: run `maestro db upgrade` to create it (or set "
        "SQLITE_PATH / MAESTRO_DATABASE_URL to the existing file)."
    )
    return NotMigratedError(message, details={"url": settings.masked_database_url, "reason": "not_migrated"})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    current: BaseException | None = exc
    for _ in range(10):
        if current is None:
            return
        yield current
        current = current.__cause__ or current.__context__


def _driver_error(exc: BaseException) -> BaseException:
    return getattr(exc, "orig", None) or exc


def reason_of(exc: BaseException) -> str | None:
    """The reason code of a database failure, or None when ``exc`` is no database failure (a bug stays a bug)."""
    orig = _driver_error(exc)
    code = getattr(orig, "pgcode", None)
    if code in _PG_CODES:
        return _PG_CODES[code]
    operational = isinstance(exc, OperationalError | InterfaceError | DisconnectionError | sqlite3.OperationalError)
    operational = operational or type(orig).__name__ in ("OperationalError", "InterfaceError")
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return "lost"
    if not operational:
        return None
    lowered = str(orig).lower()
    for reason, words, also in _WORDS:
        if any(w in lowered for w in words) and also in lowered:
            return reason
    return "error"


def database_error_of(exc: BaseException, settings: Settings | None = None) -> DatabaseError | None:
    """The ``DatabaseError`` for ``exc`` or what caused it, when that is a database failure; else None."""
    for current in _chain(exc):
        if isinstance(current, DatabaseError):
            return current
        reason = reason_of(current)
        if reason is not None:
            return as_database_error(current, settings or get_settings(), reason)
    return None


def driver_line(exc: BaseException, settings: Settings) -> str:
    """The first line of the driver's message (password masked, 200 characters at most): for server logs."""
    orig = _driver_error(exc)
    line = next((ln.strip() for ln in str(orig).splitlines() if ln.strip()), type(orig).__name__)
    password = settings.database_url.password
    return (line.replace(str(password), "***") if password else line)[:200]


def as_database_error(exc: BaseException, settings: Settings, reason: str | None = None) -> DatabaseError:
    """One sentence for a database failure: which database, what is wrong, and the fix."""
    reason = reason or reason_of(exc) or "error"
    url, masked = settings.database_url, settings.masked_database_url
    ours = getattr(exc, OURS, False) or isinstance(exc, sqlite3.Error)
    if ours:
        where = f"the Maestro database {masked}"
    else:
        where = f"Dagster's storage in {settings.dagster_home if url.get_backend_name() == 'sqlite' else masked}"
    details = {"url": masked, "reason": reason}
    missing = sqlite_file_missing(settings) if ours else None
    if reason == "cannot_open" and missing is not None:
        return missing_file_error(settings, missing)
    lost = "`maestro db health` checks the connection"
    messages = {
        "not_migrated": f"{where} has no Maestro tables yet (not migrated): run `maestro db upgrade`.",
        "read_only": f"{where} cannot be written (read-only): make the database file and its directory writable "
        "by this user (SQLite), or use a user and a server that accept writes (PostgreSQL: not a standby, "
        "default_transaction_read_only off).",
        "permission": f"permission denied on {where}: "
        + (
            f"grant this user the privileges on Maestro's schema {settings.schema_name!r}, or connect as its owner"
            if ours
            else "Dagster keeps its tables in the database's public schema: grant this user CREATE and USAGE on it"
        )
        + f" ({SERVER_SETTINGS}).",
        "locked": f"{where} stayed locked by other writers for more than {settings.sqlite_busy_timeout:g} s "
        "(MAESTRO_SQLITE_BUSY_TIMEOUT): retry; for many concurrent writers use PostgreSQL.",
        "refused": f"Cannot connect to {where}: connection refused (no server is listening there). Start the "
        f"PostgreSQL server, or fix {SERVER_SETTINGS}; {lost}.",
        "timeout": f"Cannot connect to {where}: no answer within the connect timeout. Check that the server is up "
        f"and reachable from here, or fix {SERVER_SETTINGS}.",
        "unknown_host": f"Cannot connect to {where}: unknown host {url.host!r}. Fix {SERVER_SETTINGS}.",
        "auth": f"Cannot connect to {where}: the server refused user {url.username!r} (authentication). Fix "
        "POSTGRES_USER/POSTGRES_PASSWORD (or MAESTRO_DATABASE_URL).",
        "no_database": f"Cannot connect to {where}: the database {url.database!r} does not exist on that server. "
        "Create it (createdb) or fix POSTGRES_DB (or MAESTRO_DATABASE_URL), then run `maestro db upgrade`.",
        "too_many": f"Cannot connect to {where}: the server has no connection slot left. Lower DB_POOL_SIZE / "
        "DB_MAX_OVERFLOW of the processes using it, or raise the server's max_connections.",
        "lost": f"Lost the connection to {where}: the server stopped, restarted or closed it. Retry once it is "
        f"back; {lost}.",
        "cannot_open": f"Cannot open {where}: check that this user may read and write the database file and its "
        "directory.",
    }
    message = messages.get(reason) or (
        f"Database error on {where}: {driver_line(exc, settings)}. `maestro db health` checks the connection and "
        "the schema."
    )
    message = message[0].upper() + message[1:]
    return (NotMigratedError if reason == "not_migrated" else DatabaseError)(message, details=details)
