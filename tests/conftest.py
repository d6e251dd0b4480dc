"""Shared fixtures: real SQLite files and real PostgreSQL databases (created and dropped per test session).

PostgreSQL is found at ``MAESTRO_TEST_POSTGRES_URL`` (default: the local server, user ``postgres``).
If it cannot be reached the PostgreSQL tests fail with a clear message; they never skip silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from _procs import MAESTRO_ENV, TEST_SETTINGS
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from maestro_dagster.db import migrate
from maestro_dagster.db.session import dispose_engines
from maestro_dagster.settings import Settings, get_settings, normalise_url

DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[None]:
    for name in MAESTRO_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in TEST_SETTINGS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MAESTRO_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    dispose_engines()


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    raw = os.environ.get("MAESTRO_TEST_POSTGRES_URL", DEFAULT_PG_URL)
    url = normalise_url(raw, "MAESTRO_TEST_POSTGRES_URL")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # pragma: no cover - environment problem
        pytest.fail(
            f"PostgreSQL is not reachable at {url.render_as_string(hide_password=True)} ({exc}). "
            "Start it, or point MAESTRO_TEST_POSTGRES_URL at a server where this user may CREATE DATABASE."
        )
    finally:
        engine.dispose()
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_database_factory(pg_admin_url: str) -> Iterator[Callable[[], str]]:
    """Creates fresh databases on demand; drops every one of them when the session ends."""
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def create() -> str:
        name = f"maestro_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)

    yield create
    dispose_engines()
    with admin.connect() as conn:
        for name in created:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _settings_for(backend: str, monkeypatch: pytest.MonkeyPatch, tmp_path, factory) -> Settings:
    if backend == "postgresql":
        monkeypatch.setenv("MAESTRO_DATABASE_URL", factory())
    else:
        monkeypatch.setenv("MAESTRO_DATABASE_URL", f"sqlite:///{tmp_path / 'maestro.db'}")
    get_settings.cache_clear()
    dispose_engines()
    return get_settings()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def empty_db(backend, monkeypatch, tmp_path, request) -> Settings:
    """Settings pointing at a new, empty database of the parametrised backend."""
    factory = request.getfixturevalue("pg_database_factory") if backend == "postgresql" else None
    return _settings_for(backend, monkeypatch, tmp_path, factory)


@pytest.fixture
def db(empty_db: Settings) -> Settings:
    """Settings pointing at a new database of the parametrised backend, migrated to head."""
    migrate.upgrade(empty_db)
    return empty_db


# ---- a whole Maestro + Dagster environment -------------------------------------------------------------


class MaestroEnv:
    """A migrated Maestro database, a real Dagster instance beside it (same backend), and helpers."""

    def __init__(self, settings: Settings, instance, defs_dir) -> None:
        self.settings, self.instance, self.defs_dir = settings, instance, defs_dir

    def add_definition(self, raw: dict):
        """Validate and store a definition document; returns its WorkflowSpec (raises if invalid)."""
        from maestro_dagster.db.session import get_db
        from maestro_dagster.defs_store import store_definition

        with get_db(self.settings) as session:
            report, _ = store_definition(session, raw, self.settings, source="test")
        return report.raise_if_invalid()

    def run(self, workflow_id: str, initial_context: dict | None = None, *, in_process: bool = True):
        """Start an execution through Dagster (``maestro run``'s code path) and wait for it."""
        from maestro_dagster.executions.local import run_workflow

        return run_workflow(self.instance, workflow_id, initial_context or {}, in_process=in_process)

    def resume(self, execution_id: str, *, in_process: bool = True):
        from maestro_dagster.executions.local import resume_workflow

        return resume_workflow(self.instance, execution_id, in_process=in_process)

    def verify(self, execution_id: str) -> list:
        from maestro_dagster.db.session import get_db
        from maestro_dagster.mirror.verify import verify_execution

        with get_db(self.settings) as session:
            return verify_execution(session, self.instance, execution_id)


@pytest.fixture
def maestro_env(db: Settings, tmp_path, monkeypatch) -> Iterator[MaestroEnv]:
    """``db`` plus a Dagster instance under MAESTRO_HOME (PostgreSQL storage in the same database on PG)."""
    from maestro_dagster.instance import PG_URL_ENV, get_instance

    defs_dir = tmp_path / "defs"
    defs_dir.mkdir()
    monkeypatch.setenv("MAESTRO_DEFS_DIR", str(defs_dir))
    monkeypatch.setenv("MAESTRO_SYNC_DEFS_ON_LOAD", "false")
    monkeypatch.setenv("DAGSTER_HOME", str(db.dagster_home))
    monkeypatch.setenv(PG_URL_ENV, "")
    get_settings.cache_clear()
    settings = get_settings()
    instance = get_instance(settings)
    try:
        yield MaestroEnv(settings, instance, defs_dir)
    finally:
        instance.dispose()
