"""The CLI starts without what its command does not need (issue 14): ``python -m maestro_dagster ARGS`` run as a user
runs it, under ``-X importtime``, which lists every module the process imported.

``maestro --help`` and every command's ``--help`` import neither SQLAlchemy nor Dagster nor the web stack;
``maestro defs list`` and ``maestro db health`` (on a migrated SQLite home) import SQLAlchemy but not Dagster,
FastAPI or uvicorn. The help texts still name every option. Timings are in ``bench/bench_cli.py``, not here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from _defs import definition, node

from maestro_dagster.db import migrate
from maestro_dagster.settings import get_settings

WEB_AND_DAGSTER = {"dagster", "fastapi", "uvicorn", "starlette"}
HEAVY_FOR_HELP = WEB_AND_DAGSTER | {"sqlalchemy", "alembic", "pydantic_settings"}


def run_imported(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """``python -X importtime -m maestro_dagster ARGS`` with this test's environment: the finished process and the
    top-level packages it imported (from the ``import time:`` lines Python writes to stderr)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "maestro_dagster", *args],
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    packages = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "typer" in packages, done.stderr[-2000:]  # the listing was read: the CLI itself was imported
    return done, packages


def test_help_imports_no_database_dagster_or_web_stack():
    done, packages = run_imported("--help")
    assert done.returncode == 0, done.stderr[-2000:]
    for command in ("run", "resume", "approve", "dev", "api", "db", "defs", "mirror", "triggers"):
        assert f" {command} " in done.stdout, done.stdout
    assert packages.isdisjoint(HEAVY_FOR_HELP), sorted(packages & HEAVY_FOR_HELP)


@pytest.mark.parametrize(
    ("args", "options"),
    [
        (("run", "--help"), ("--requirement", "--context", "--in-process", "--verbose", "workflow_id")),
        (("resume", "--help"), ("--in-process", "--verbose", "execution_id")),
        (("approve", "--help"), ("--reject", "--comment", "--by", "node_id")),
        (("mirror", "sync", "--help"), ("--run", "--all")),
        (("triggers", "list", "--help"), ("--json",)),
        (("api", "--help"), ("--host", "--port", "--workers")),
        (("dev", "--help"), ("--host", "--port")),
        (("db", "downgrade", "--help"), ("--yes", "revision")),
        (("defs", "sync", "--help"), ("--dir",)),
    ],
)
def test_a_commands_help_shows_its_options_without_importing_what_it_runs(args, options):
    done, packages = run_imported(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    for option in options:
        assert option in done.stdout, done.stdout
    assert packages.isdisjoint(HEAVY_FOR_HELP), sorted(packages & HEAVY_FOR_HELP)


def test_defs_list_and_db_health_import_no_dagster_or_web_stack(tmp_path):
    migrate.upgrade(get_settings())  # MAESTRO_HOME is this test's (conftest): its SQLite file, migrated
    defs_dir = tmp_path / "defs"
    defs_dir.mkdir()
    (defs_dir / "listed.json").write_text(
        json.dumps(definition("listed_here", {"a": node(), "b": node()}, [("a", "b")]))
    )
    synced = subprocess.run(
        [sys.executable, "-m", "maestro_dagster", "defs", "sync", "--dir", str(defs_dir)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert synced.returncode == 0, synced.stdout + synced.stderr

    listed, packages = run_imported("defs", "list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    (line,) = [line for line in listed.stdout.splitlines() if line.startswith("listed_here ")]
    assert line.split()[1:4] == ["1", "2", "yes"], listed.stdout
    assert "sqlalchemy" in packages  # it did read the table
    assert packages.isdisjoint(WEB_AND_DAGSTER), sorted(packages & WEB_AND_DAGSTER)

    health, packages = run_imported("db", "health")
    assert health.returncode == 0, health.stderr[-2000:]
    assert "backend:  sqlite" in health.stdout and "status:   healthy" in health.stdout, health.stdout
    assert packages.isdisjoint(WEB_AND_DAGSTER), sorted(packages & WEB_AND_DAGSTER)
