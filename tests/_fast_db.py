"""The fast tier for pure database tests: one migrated database per backend and test session, each test inside a
transaction that is rolled back.

``fast_sqlite`` / ``fast_postgresql`` (session scope, created on first use): a new SQLite file / PostgreSQL
database, migrated to head once with ``migrate.upgrade`` and dropped when the session ends, with an engine of its
own (``build_engine``, outside the registry that ``dispose_engines`` empties after every test).

``fast_db`` (function scope, parametrised by ``backend``): one connection of that engine with an outer transaction
begun; ``fast_db.session`` is a Session joined to it with ``join_transaction_mode="create_savepoint"``, so the code
under test may ``commit``, ``rollback`` and ``begin_nested`` as it likes: its commits release savepoints, never the
outer transaction, which is rolled back after the test. ``fast_db.scope()`` stands in for ``get_db(settings)`` in a
test that wants a fresh Session per block (a new identity map, as a new ``get_db`` block has): committed when the
block ends, rolled back (to its savepoint) if it raises. ``db_session`` is ``fast_db.session``.

Only for code that takes the session it is given. Code that opens its own sessions (``get_db(settings)``,
``DatabaseWorkflowContextStore``), runs migrations, starts processes or Dagster runs keeps the ``db`` / ``empty_db``
fixtures of ``tests/conftest.py``: it would not see the test's uncommitted rows, and its commits would stay behind.
``fast_settings`` points at the shared database for tests that only read its schema (never write through it).

Import the fixtures into a ``conftest.py`` (``tests/db/conftest.py`` does) to use them in a folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from _procs import MAESTRO_ENV, TEST_SETTINGS
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from maestro_dagster.db import migrate
from maestro_dagster.db.session import build_engine
from maestro_dagster.settings import Settings


@dataclass(frozen=True)
class FastDatabase:
    """A migrated database shared by the whole test session, and its engine."""

    backend: str
    settings: Settings
    engine: Engine


def _migrated(url: str, home: Path, backend: str) -> FastDatabase:
    """Settings for ``url`` (built in a clean environment, as ``_clean_env`` gives every test), migrated to head."""
    with pytest.MonkeyPatch.context() as mp:
        for name in MAESTRO_ENV:
            mp.delenv(name, raising=False)
        for name, value in TEST_SETTINGS.items():
            mp.setenv(name, value)
        mp.setenv("MAESTRO_HOME", str(home))
        mp.setenv("MAESTRO_DATABASE_URL", url)
        settings = Settings()
        migrate.upgrade(settings)  # its engine is in the registry, disposed after the test (``_clean_env``)
    return FastDatabase(backend, settings, build_engine(settings, create=False))


@pytest.fixture(scope="session")
def fast_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastDatabase]:
    home = tmp_path_factory.mktemp("fast_sqlite")
    database = _migrated(f"sqlite:///{home / 'maestro.db'}", home / "home", "sqlite")
    yield database
    database.engine.dispose()
    for path in home.glob("maestro.db*"):  # dropped: the file and its WAL
        path.unlink()


@pytest.fixture(scope="session")
def fast_postgresql(
    pg_database_factory: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FastDatabase]:
    """Dropped with the session's other databases by ``pg_database_factory`` (after this engine is disposed)."""
    home = tmp_path_factory.mktemp("fast_postgresql")
    database = _migrated(pg_database_factory(), home / "home", "postgresql")
    yield database
    database.engine.dispose()


class FastDb:
    """One test's view of the shared database: a connection in an outer transaction and Sessions joined to it."""

    def __init__(self, database: FastDatabase, connection: Connection) -> None:
        self.backend, self.settings, self.connection = database.backend, database.settings, connection
        self.session = self.new_session()

    def new_session(self) -> Session:
        return Session(bind=self.connection, join_transaction_mode="create_savepoint", expire_on_commit=False)

    @contextmanager
    def scope(self) -> Iterator[Session]:
        """What ``get_db(settings)`` gives, inside the test's transaction: a new Session, committed (its savepoint
        released) when the block ends, rolled back to its savepoint if the block raises."""
        session = self.new_session()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


@pytest.fixture
def fast_db(backend: str, request: pytest.FixtureRequest) -> Iterator[FastDb]:
    database: FastDatabase = request.getfixturevalue(f"fast_{backend}")
    connection = database.engine.connect()
    outer = connection.begin()
    fast = FastDb(database, connection)
    try:
        yield fast
    finally:
        fast.session.close()
        if outer.is_active:
            outer.rollback()
        connection.close()


@pytest.fixture
def db_session(fast_db: FastDb) -> Session:
    return fast_db.session


@pytest.fixture
def fast_settings(backend: str, request: pytest.FixtureRequest) -> Settings:
    """Settings of the shared migrated database, for tests that only read it (its schema, its revision)."""
    database: FastDatabase = request.getfixturevalue(f"fast_{backend}")
    return database.settings


__all__ = ["FastDb", "db_session", "fast_db", "fast_postgresql", "fast_settings", "fast_sqlite"]
