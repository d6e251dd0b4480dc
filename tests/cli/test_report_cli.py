"""``maestro report`` as a user runs it (a subprocess with only environment variables set), on SQLite and
PostgreSQL, over the hand-computed dataset (``_report_data``): the three reports in the three formats (the JSON and
CSV parse, with the numbers of the dataset), the window and workflow options, clear errors, and help texts that
import neither SQLAlchemy nor Dagster."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from _report_data import D1, insert
from sqlalchemy import update

from maestro_dagster.db.dialect import is_postgresql
from maestro_dagster.db.models import RollupDay
from maestro_dagster.db.session import get_db
from maestro_dagster.reporting import rollups

WINDOW = ("--since", "10d", "--until", "2026-10-03")  # the dataset's two days, D1 and D2 of 2026-10


def maestro(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "maestro_dagster", *args],
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=180,
    )


def ok(*args: str) -> str:
    done = maestro(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def dataset(db):
    with get_db(db) as session:
        insert(session)
        postgresql = is_postgresql(session)
    return postgresql


def test_summary_in_three_formats(dataset):
    items = {i["workflow_id"]: i for i in json.loads(ok("report", "summary", *WINDOW, "--format", "json"))}
    alpha, beta = items["alpha"], items["beta"]
    assert (alpha["executions"], alpha["completed"], alpha["failed"], alpha["success_rate"]) == (
        3, 2, 1, pytest.approx(200 / 3),
    )  # fmt: skip
    assert alpha["avg_duration_seconds"] == pytest.approx(35.0)
    assert alpha["p95_duration_seconds"] == (pytest.approx(57.5) if dataset else None)
    assert (beta["executions"], beta["cancelled"], beta["unfinished"], beta["avg_duration_seconds"]) == (2, 1, 1, None)

    rows = list(csv.DictReader(io.StringIO(ok("report", "summary", *WINDOW, "--format", "csv"))))
    assert [r["workflow_id"] for r in rows] == ["alpha", "beta"]
    assert (rows[0]["executions"], float(rows[0]["success_rate"]), rows[1]["avg_duration_seconds"]) == (
        "3", pytest.approx(200 / 3), "",
    )  # fmt: skip

    table = ok("report", "summary", *WINDOW).splitlines()
    assert (
        table[0] == "executions created 2026-09-23 00:00:00 .. 2026-10-03 00:00:00 UTC (end excluded), every workflow"
    )
    assert table[1].split() == ["WORKFLOW", "EXECUTIONS", "COMPLETED", "FAILED", "CANCELLED", "UNFINISHED", "SUCCESS",
                                "AVG", "S", "P95", "S"]  # fmt: skip
    p95 = "57.500" if dataset else "-"
    assert table[2].split() == ["alpha", "3", "2", "1", "0", "0", "66.7%", "35.000", p95]
    assert table[3].split() == ["beta", "2", "0", "0", "1", "1", "0.0%", "-", "-"]
    assert set(table[4]) == {"-", " "}  # the rule above the total
    assert table[5].split() == ["(total)", "5", "2", "1", "1", "1", "50.0%", "35.000", p95]


def test_nodes_and_the_workflow_filter(dataset):
    items = json.loads(ok("report", "nodes", *WINDOW, "--workflow", "alpha", "-f", "json"))
    assert [(i["node_id"], i["node_states"], i["failed"], i["retries"]) for i in items] == [
        ("a", 3, 1, 2), ("b", 3, 0, 2),
    ]  # fmt: skip
    assert items[0]["failure_rate"] == pytest.approx(100 / 3) and items[0]["avg_quality_score"] == pytest.approx(0.8)
    rows = list(csv.DictReader(io.StringIO(ok("report", "nodes", *WINDOW, "--format", "csv"))))
    assert [(r["workflow_id"], r["node_id"], r["blocked"]) for r in rows] == [
        ("alpha", "a", "0"), ("alpha", "b", "1"), ("beta", "x", "0"),
    ]  # fmt: skip
    table = ok("report", "nodes", *WINDOW, "-w", "beta").splitlines()
    assert "workflow beta" in table[0]
    assert table[2].split() == ["beta", "x", "2", "1", "0", "0", "0", "0.0%", "0", "5.000", "-"]


def test_failures_newest_first_with_a_limit(dataset):
    items = json.loads(ok("report", "failures", *WINDOW, "--format", "json"))
    assert [(i["execution_id"], i["error_type"], i["error_message"], i["attempt"]) for i in items] == [
        ("e3", "RuntimeError", "flaky", 1), ("e2", "ValueError", "bad value", 2),
    ]  # fmt: skip
    assert datetime.fromisoformat(items[0]["failed_at"]) == datetime(2026, 10, 1, 13, tzinfo=UTC)
    (row,) = csv.DictReader(io.StringIO(ok("report", "failures", *WINDOW, "--limit", "1", "--format", "csv")))
    assert (row["execution_id"], row["node_id"], row["error_message"]) == ("e3", "a", "flaky")
    table = ok("report", "failures", *WINDOW).splitlines()
    assert table[2].split() == ["2026-10-01", "13:00:00", "alpha", "a", "1", "RuntimeError", "flaky", "e3"]
    assert ok("report", "failures", *WINDOW, "-w", "beta").splitlines()[-1] == "(no rows)"
    assert json.loads(ok("report", "failures", *WINDOW, "-w", "beta", "-f", "json")) == []
    assert ok("report", "failures", *WINDOW, "-w", "beta", "-f", "csv").splitlines() == [
        "event_id,failed_at,workflow_id,execution_id,node_id,attempt,error_type,error_message,dagster_run_id"
    ]


def test_a_pruned_day_is_read_from_the_rollups_and_said_so(db, dataset):
    before = json.loads(ok("report", "summary", *WINDOW, "-f", "json"))
    with get_db(db) as session:
        rollups.rebuild_day(session, D1)
        session.execute(update(RollupDay).where(RollupDay.day == D1).values(pruning_started_at=datetime.now(UTC)))
    done = maestro("report", "summary", *WINDOW, "-f", "json")
    assert done.returncode == 0, done.stderr
    after = json.loads(done.stdout)
    for row in (*before, *after):
        row.pop("p95_duration_seconds")
    assert after == before
    assert "1 UTC day(s) whose raw rows retention removed (2026-10-01)" in done.stderr
    assert "p95 covers the other days' raw rows only" in ok("report", "summary", *WINDOW)
    assert "no longer listed" in ok("report", "failures", *WINDOW)


def test_clear_errors(db):
    for args, words in [
        (("report", "summary", "--since", "1w"), "write a positive whole number followed by d (days)"),
        (("report", "nodes", "--until", "yesterday"), "is not a date or time"),
    ]:
        done = maestro(*args)
        assert done.returncode == 1 and words in done.stderr and "Traceback" not in done.stderr, done.stderr
    done = maestro("report", "failures", "--limit", "0")
    assert done.returncode == 2 and "Traceback" not in done.stderr  # a usage error (Click's range check)


def test_an_empty_database_reports_no_rows(db):
    assert json.loads(ok("report", "summary", "-f", "json")) == []
    table = ok("report", "summary").splitlines()
    assert table[0].startswith("executions created ") and table[-1] == "(no rows)"


def test_help_imports_neither_the_database_nor_dagster():
    for args in (("report", "--help"), ("report", "summary", "--help"), ("report", "failures", "--help")):
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "maestro_dagster", *args],
            env={**os.environ, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        imported = {
            line.rsplit("|", 1)[1].strip().split(".")[0]
            for line in done.stderr.splitlines()
            if line.startswith("import time:") and "|" in line
        }
        assert "typer" in imported
        assert imported.isdisjoint({"sqlalchemy", "alembic", "dagster", "fastapi", "pydantic_settings"}), imported
        for option in ("--workflow", "--since", "--until", "--format") if args[1] != "--help" else ():
            assert option in done.stdout
    assert "--limit" in done.stdout
