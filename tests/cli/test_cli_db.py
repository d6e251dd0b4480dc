"""``maestro db`` as a user runs it: a subprocess with only environment variables set."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy.engine import make_url

from maestro_dagster.db import migrate


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "MAESTRO_", "USE_SQLITE"))}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "maestro_dagster", *args], env=full_env, capture_output=True, text=True, timeout=120
    )


def test_sqlite_upgrade_and_health_with_no_settings(tmp_path):
    env = {"MAESTRO_HOME": str(tmp_path / "home")}
    before = run_cli("db", "health", env=env)
    assert before.returncode == 1
    assert "maestro db upgrade" in before.stderr
    assert run_cli("db", "upgrade", env=env).returncode == 0
    health = run_cli("db", "health", env=env)
    assert health.returncode == 0, health.stderr
    assert "backend:  sqlite" in health.stdout and "status:   healthy" in health.stdout
    assert (tmp_path / "home" / "maestro_workflows.db").is_file()
    current = run_cli("db", "current", env=env)
    assert current.stdout.strip() == migrate.head_revision()
    history = run_cli("db", "history", env=env).stdout
    assert "0001" in history and "0002" in history


def test_postgres_variables_upgrade_and_health(pg_database_factory, tmp_path):
    url = make_url(pg_database_factory())
    env = {
        "MAESTRO_HOME": str(tmp_path / "home"),
        "POSTGRES_HOST": url.host,
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": url.username,
        "POSTGRES_DB": url.database,
    }
    assert run_cli("db", "upgrade", env=env).returncode == 0
    health = run_cli("db", "health", env=env)
    assert health.returncode == 0, health.stderr
    assert "backend:  postgresql" in health.stdout and "schema:   maestro" in health.stdout


def test_unreachable_database_is_a_clear_error_without_the_password(tmp_path, pg_admin_url):
    url = make_url(pg_admin_url)
    env = {
        "MAESTRO_HOME": str(tmp_path / "home"),
        "POSTGRES_HOST": url.host,
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": "no_such_role_for_maestro",
        "POSTGRES_PASSWORD": "Sup3rS3cretPw",
        "POSTGRES_DB": "no_such_database_for_maestro",
    }
    result = run_cli("db", "health", env=env)
    assert result.returncode == 1
    assert "Sup3rS3cretPw" not in result.stdout + result.stderr
    assert "***" in result.stdout + result.stderr
    assert "Cannot connect" in result.stderr


def test_bad_setting_names_the_variable(tmp_path):
    result = run_cli("db", "health", env={"MAESTRO_HOME": str(tmp_path), "POSTGRES_PORT": "eighty"})
    assert result.returncode == 2
    assert "POSTGRES_PORT" in result.stderr


def test_reset_refuses_without_yes(tmp_path):
    env = {"MAESTRO_HOME": str(tmp_path / "home")}
    run_cli("db", "upgrade", env=env)
    refused = run_cli("db", "reset", env=env)
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert run_cli("db", "reset", "--yes", env=env).returncode == 0
