"""Commands run before ``maestro db upgrade`` (issue 12, point 9): on a SQLite database that does not exist, or
exists without tables, every command that needs the tables says to run ``maestro db upgrade`` (exit 1, one line,
no traceback) and leaves no database file behind; only ``maestro db upgrade`` creates it."""

from __future__ import annotations

import pytest
from _maestro_cli import assert_clean_error, run_cli
from _procs import free_port
from fastapi.testclient import TestClient

from maestro_dagster.api.app import create_app
from maestro_dagster.settings import get_settings

NEEDS_TABLES = [
    ("run", "sdlc_linear"),
    ("resume", "exec_nope_20260101_000000_00000000"),
    ("approve", "exec_nope_20260101_000000_00000000", "review"),
    ("mirror", "sync"),
    ("mirror", "verify"),
    ("defs", "list"),
    ("defs", "sync"),
    ("api", "--port", "0"),
    ("db", "health"),
]


@pytest.fixture
def home(tmp_path):
    """A fresh MAESTRO_HOME (not created) with the default SQLite database inside it."""
    home = tmp_path / "home"
    return home, home / "maestro_workflows.db"


@pytest.mark.parametrize("args", NEEDS_TABLES, ids=lambda a: " ".join(a[:2]))
def test_a_command_before_db_upgrade_says_so_and_creates_no_database(home, args) -> None:
    path, db_file = home
    args = tuple(str(free_port()) if a == "0" else a for a in args)
    result = run_cli(*args, env={"MAESTRO_HOME": str(path)})
    assert_clean_error(result, "maestro db upgrade", str(db_file))
    assert "check that the database is running" not in result.stderr.lower()
    assert not db_file.exists(), f"`maestro {' '.join(args)}` created {db_file}"


def test_an_empty_database_file_says_to_run_db_upgrade(home) -> None:
    path, db_file = home
    path.mkdir()
    db_file.touch()  # e.g. left behind by an earlier version
    env = {"MAESTRO_HOME": str(path)}
    assert_clean_error(run_cli("run", "sdlc_linear", env=env), "maestro db upgrade", "no tables")
    assert_clean_error(run_cli("defs", "list", env=env), "maestro db upgrade", "not migrated")


def test_only_db_upgrade_creates_the_file(home) -> None:
    path, db_file = home
    env = {"MAESTRO_HOME": str(path)}
    assert run_cli("db", "current", env=env).stdout.strip() == "base (no tables)"
    assert not db_file.exists()
    upgraded = run_cli("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert db_file.is_file()
    health = run_cli("db", "health", env=env)
    assert health.returncode == 0, health.stdout + health.stderr
    assert "status:   healthy" in health.stdout


def test_the_api_answers_503_not_migrated_and_creates_no_file(home, monkeypatch) -> None:
    _, db_file = home
    monkeypatch.setenv("MAESTRO_API_OPEN", "true")
    get_settings.cache_clear()
    with TestClient(create_app(get_settings())) as client:
        response = client.get("/api/workflows")
        health = client.get("/health")
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error"] == "database_not_migrated" and "maestro db upgrade" in body["message"], body
    assert health.status_code == 200 and health.json()["status"] == "degraded", health.text
    assert not db_file.exists()


def test_db_reset_on_a_fresh_home_creates_the_database(home) -> None:
    path, db_file = home
    reset = run_cli("db", "reset", "--yes", env={"MAESTRO_HOME": str(path)})
    assert reset.returncode == 0, reset.stdout + reset.stderr
    assert db_file.is_file() and "reset to revision" in reset.stdout
