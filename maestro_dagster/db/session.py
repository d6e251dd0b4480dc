"""Engines and sessions for Maestro's database.

SQLite (the embedded default) is opened in WAL mode with a busy timeout and foreign keys on, because
run workers, the daemon's sensor, the CLI and the API write it at the same time. PostgreSQL connections
put Maestro's schema first on the ``search_path``. ``get_db()`` is the seed's context manager: it commits
on success and rolls back on error; functions that take a session never commit themselves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DisconnectionError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from maestro_dagster.errors import DatabaseError
from maestro_dagster.settings import Settings, get_settings, mask_url

_engines: dict[tuple[str, str | None, bool], Engine] = {}
_lock = threading.Lock()
READ_PING_AFTER_IDLE_SECONDS = 10.0  # the read engine tests a connection unused this long before handing it out


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


def build_engine(settings: Settings, url: URL | None = None, *, reads: bool = False) -> Engine:
    """A new engine for ``url`` (default: the Maestro database) configured as described above.

    ``reads=True`` (PostgreSQL): an engine for read-only sessions. Its connections are in autocommit for good
    (set once when connected: no ``BEGIN`` before a read, no ``ROLLBACK`` or isolation reset when the connection
    goes back to the pool), and a connection is pinged only after it sat idle, not at every checkout."""
    url = url or settings.database_url
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            from pathlib import Path

            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": settings.sqlite_busy_timeout, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas(int(settings.sqlite_busy_timeout * 1000)))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    connect_args: dict[str, Any] = {"connect_timeout": 10, "application_name": "maestro-dagster"}
    if url == settings.database_url and settings.schema_name:
        connect_args["options"] = f"-csearch_path={settings.schema_name},public"
    pool = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_timeout": settings.db_pool_timeout,
        "pool_recycle": settings.db_pool_recycle,
    }
    if not reads:
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **pool)
    engine = create_engine(
        url, isolation_level="AUTOCOMMIT", pool_reset_on_return=None, connect_args=connect_args, **pool
    )
    _ping_after_idle(engine, READ_PING_AFTER_IDLE_SECONDS)
    return engine


def get_engine(settings: Settings | None = None, *, reads: bool = False) -> Engine:
    """The process-wide engine for the Maestro database (one per URL and schema; on PostgreSQL a second one
    for read-only sessions, see ``build_engine``)."""
    settings = settings or get_settings()
    reads = reads and settings.database_url.get_backend_name() == "postgresql"
    key = (settings.database_url.render_as_string(hide_password=False), settings.schema_name, reads)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = build_engine(settings, reads=reads)
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
        engine = engine.execution_options(maestro_immediate=True)  # type: ignore[assignment]
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

    ``immediate=True`` takes SQLite's write lock at BEGIN (use it for read-modify-write work).
    """
    session = session_factory(settings, immediate=immediate)()
    try:
        yield session
        session.commit()
    except OperationalError as exc:
        session.rollback()
        raise DatabaseError(
            f"Database error on {mask_url((settings or get_settings()).database_url)}: {exc.orig}. "
            "Check that the database is running and reachable (see `maestro db health`).",
        ) from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


session_scope = get_db  # the original's name


def ping(settings: Settings | None = None) -> None:
    """``SELECT 1``; raises DatabaseError naming the (masked) URL and the cause."""
    settings = settings or get_settings()
    try:
        with get_engine(settings).connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        cause = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
        if settings.postgres_password and settings.postgres_password in cause:
            cause = cause.replace(settings.postgres_password, "***")
        raise DatabaseError(
            f"Cannot connect to {settings.masked_database_url}: {cause}. "
            "Check POSTGRES_HOST/PORT/USER/PASSWORD/DB (or MAESTRO_DATABASE_URL) and that the server is up.",
            details={"url": settings.masked_database_url},
        ) from None
