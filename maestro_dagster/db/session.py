"""Engines and sessions for Maestro's database, and the checks of it (``ping``, ``ping_within``, ``check_writable``).

SQLite (the embedded default) is opened in WAL mode with a busy timeout and foreign keys on, because
run workers, the daemon's sensor, the CLI and the API write it at the same time. Only migrations create the
SQLite file (``maestro db upgrade``, ``migrate.upgrade``): every engine of ``get_engine`` opens an existing file
(``mode=rw``), so a command run before ``maestro db upgrade`` leaves no empty database behind. PostgreSQL
connections put Maestro's schema first on the ``search_path`` and give up connecting after
``CONNECT_TIMEOUT_SECONDS``. ``get_db()`` is the seed's context manager: it commits on success and rolls back on
error; functions that take a session never commit themselves. A database failure is raised as the one clean
``DatabaseError`` of ``failures.py``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, NullPool, create_engine, event, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from maestro_dagster.db.failures import as_database_error, database_error_of, mark_ours, sqlite_file_missing
from maestro_dagster.errors import DatabaseError
from maestro_dagster.settings import Settings, get_settings

_engines: dict[tuple[str, str | None, str], Engine] = {}
_lock = threading.Lock()
READ_PING_AFTER_IDLE_SECONDS = 10.0  # the read engine tests a connection unused this long before handing it out
CONNECT_TIMEOUT_SECONDS = 10  # PostgreSQL: a connection attempt gives up after this (libpq's connect_timeout)
PROBE_CONNECT_TIMEOUT_SECONDS = 2  # the probe engine's (``ping_within``): libpq's minimum
_pools: dict[tuple[str, int], ThreadPoolExecutor] = {}


def _sqlite_pragmas(busy_timeout_ms: int):
    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, manage transactions so BEGIN IMMEDIATE etc. behave.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    return on_connect


def _sqlite_begin(conn: Any) -> None:
    # Writers that read-then-write take the write lock up front (BEGIN IMMEDIATE): in WAL mode a deferred
    # transaction that later upgrades can fail with SQLITE_BUSY without waiting for the busy timeout.
    immediate = conn.get_execution_options().get("maestro_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_existing(path: str, timeout: float) -> Callable[[], sqlite3.Connection]:
    """Connections to the SQLite file at ``path`` that fail ("unable to open") instead of creating it."""
    uri = f"file:{quote(path)}?mode=rw"
    return lambda: sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)


def _ping_after_idle(engine: Engine, idle_seconds: float) -> None:
    """Test a pooled connection with ``SELECT 1`` when it is checked out after ``idle_seconds`` unused (a server
    restart or a dropped connection is found then, and the pool connects afresh); a connection in steady use
    skips that round trip. A connection that breaks while in use is found by its error: SQLAlchemy then discards
    every connection the pool held before it."""

    @event.listens_for(engine, "checkin")
    def checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["maestro_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("maestro_idle_since", None)
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)  # what pool_pre_ping runs
        except Exception as exc:
            raise DisconnectionError(f"pooled connection is gone: {exc}") from exc


def build_engine(
    settings: Settings, url: URL | None = None, *, reads: bool = False, create: bool = True, probe: bool = False
) -> Engine:
    """A new engine for ``url`` (default: the Maestro database) configured as described above.

    ``create=False`` (SQLite): never create the database file. ``reads=True`` (PostgreSQL): an engine for read-only
    sessions. Its connections are in autocommit for good (set once when connected: no ``BEGIN`` before a read, no
    ``ROLLBACK`` or isolation reset when the connection goes back to the pool), and a connection is pinged only
    after it sat idle, not at every checkout. ``probe=True`` (PostgreSQL): no pool, ``PROBE_CONNECT_TIMEOUT_SECONDS``.
    """
    url = url or settings.database_url
    if url.get_backend_name() == "sqlite":
        args: dict[str, Any] = {"connect_args": {"timeout": settings.sqlite_busy_timeout, "check_same_thread": False}}
        if url.database and url.database != ":memory:":
            if create:
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            else:
                args = {"creator": _sqlite_existing(url.database, settings.sqlite_busy_timeout)}
        engine = create_engine(url, **args)
        event.listen(engine, "connect", _sqlite_pragmas(int(settings.sqlite_busy_timeout * 1000)))
        event.listen(engine, "begin", _sqlite_begin)
        return mark_ours(engine)
    timeout = PROBE_CONNECT_TIMEOUT_SECONDS if probe else CONNECT_TIMEOUT_SECONDS
    connect_args: dict[str, Any] = {"connect_timeout": timeout, "application_name": "maestro-dagster"}
    if url == settings.database_url and settings.schema_name:
        connect_args["options"] = f"-csearch_path={settings.schema_name},public"
    if probe:
        return mark_ours(create_engine(url, poolclass=NullPool, connect_args=connect_args))
    pool = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout,
        "pool_recycle": settings.db_pool_recycle,
    }
    if not reads:
        return mark_ours(create_engine(url, pool_pre_ping=True, connect_args=connect_args, **pool))
    engine = create_engine(
        url, isolation_level="AUTOCOMMIT", pool_reset_on_return=None, connect_args=connect_args, **pool
    )
    _ping_after_idle(engine, READ_PING_AFTER_IDLE_SECONDS)
    return mark_ours(engine)


def get_engine(settings: Settings | None = None, *, reads: bool = False, probe: bool = False) -> Engine:
    """The process-wide engine for the Maestro database (one per URL and schema; on PostgreSQL a second one
    for read-only sessions and a third for probes, see ``build_engine``). It never creates a SQLite file."""
    settings = settings or get_settings()
    postgres = settings.database_url.get_backend_name() == "postgresql"
    kind = ("probe" if probe else "reads" if reads else "") if postgres else ""
    key = (settings.database_url.render_as_string(hide_password=False), settings.schema_name, kind)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = build_engine(settings, reads=kind == "reads", probe=kind == "probe", create=False)
            _engines[key] = engine
        return engine


def dispose_engines() -> None:
    """Close every pooled connection (tests, and after a fork)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def session_factory(settings: Settings | None = None, *, immediate: bool = False) -> sessionmaker[Session]:
    engine = get_engine(settings)
    if immediate:
        engine = engine.execution_options(maestro_immediate=True)
    return sessionmaker(bind=engine, expire_on_commit=False)


def read_session_factory(settings: Settings | None = None) -> sessionmaker[Session]:
    """Sessions for reads only (the API's GET endpoints). On PostgreSQL they use the read engine, whose
    statements run in autocommit: no ``BEGIN`` before the first one and no ``ROLLBACK`` when the connection goes
    back to the pool, and no ping at checkout while the connection is in use: one round trip per statement and
    none besides. Nothing is lost: under READ COMMITTED each statement of a transaction sees its own snapshot
    anyway. A session from here must not write (in autocommit, each statement would commit alone)."""
    return sessionmaker(bind=get_engine(settings, reads=True), expire_on_commit=False)


@contextmanager
def get_db(settings: Settings | None = None, *, immediate: bool = False) -> Iterator[Session]:
    """A session whose transaction commits when the block ends and rolls back if it raises.

    ``immediate=True`` takes SQLite's write lock at BEGIN (use it for read-modify-write work). A database failure
    (unreachable, lost, not migrated, locked, read-only) is raised as ``DatabaseError`` (``details['reason']``),
    caused by the driver's error.
    """
    session = session_factory(settings, immediate=immediate)()
    try:
        yield session
        session.commit()
    except SQLAlchemyError as exc:
        with contextlib.suppress(SQLAlchemyError):
            session.rollback()
        error = database_error_of(exc, settings)
        if error is None:
            raise
        raise error from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        with contextlib.suppress(SQLAlchemyError):
            session.close()


session_scope = get_db  # the original's name


def ping(settings: Settings | None = None) -> None:
    """``SELECT 1``; raises DatabaseError naming the (masked) URL, the cause and the fix.

    A SQLite file that does not exist yet passes when it can be created there (``maestro db upgrade`` creates it);
    nothing is created here."""
    settings = settings or get_settings()
    missing = sqlite_file_missing(settings)
    if missing is not None:
        parent = next(p for p in missing.parents if p.exists())
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise DatabaseError(
                f"The Maestro database {missing} cannot be created: {parent} is not a writable directory. "
                "Set SQLITE_PATH or MAESTRO_HOME to a writable place.",
                details={"url": settings.masked_database_url, "reason": "read_only"},
            )
        return
    try:
        with get_engine(settings).connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise as_database_error(exc, settings) from None


def bounded_pool(name: str) -> ThreadPoolExecutor:
    """This process's small thread pool ``name`` (4 threads) for checks that answer within a bound whatever they
    wait on: a late one is left to finish while the caller answers. A forked child gets its own (it has none of
    its parent's threads)."""
    key = (name, os.getpid())
    pool = _pools.get(key)
    if pool is None:
        pool = _pools.setdefault(key, ThreadPoolExecutor(max_workers=4, thread_name_prefix=name))
    return pool


def ping_within(settings: Settings, seconds: float) -> None:
    """``SELECT 1`` on a new connection that gives up after ``seconds`` whatever the server does (it may accept
    connections and never answer); raises DatabaseError. PostgreSQL: the probe engine (no pool, connect timeout
    ``PROBE_CONNECT_TIMEOUT_SECONDS``, so an abandoned probe ends by itself); SQLite: the file must exist. At most 4
    probes run at once; one that did not start within ``seconds`` is dropped."""
    if sqlite_file_missing(settings) is not None:
        raise as_database_error(sqlite3.OperationalError("unable to open database file"), settings, "cannot_open")

    def probe() -> None:
        with get_engine(settings, probe=True).connect() as conn:
            conn.execute(text("SELECT 1"))

    future = bounded_pool("maestro-db-probe").submit(probe)
    try:
        future.result(timeout=seconds)
    except FutureTimeout:
        future.cancel()
        raise DatabaseError(
            f"Cannot connect to the Maestro database {settings.masked_database_url}: no answer within {seconds:g} s. "
            "Check that the server is up, not overloaded, and reachable from here.",
            details={"url": settings.masked_database_url, "reason": "timeout"},
        ) from None
    except SQLAlchemyError as exc:
        raise as_database_error(exc, settings) from None


def check_writable(settings: Settings, table: str) -> None:
    """Write in a transaction that is rolled back (an update of ``table``'s ``version_num`` that changes nothing);
    raises DatabaseError when the database only reads: a read-only SQLite file or directory, a PostgreSQL user
    without the privilege, a read-only transaction default or a standby server."""
    name = f'"{settings.schema_name}"."{table}"' if settings.schema_name else f'"{table}"'
    try:
        with get_engine(settings).connect() as conn:
            conn.execute(text(f"UPDATE {name} SET version_num = version_num"))
            conn.rollback()
    except SQLAlchemyError as exc:
        raise as_database_error(exc, settings) from None
