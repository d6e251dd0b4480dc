"""The reporting views of migration 0006 against hand-computed answers (``_report_data``), on SQLite and
PostgreSQL: each of the seed guide's four monitoring questions is one SELECT from a view."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from maestro_dagster.db.dialect import is_postgresql

approx = pytest.approx


def _rows(session, sql: str) -> list[dict]:
    return [dict(row) for row in session.execute(text(sql)).mappings()]


def test_the_seed_monitoring_queries_are_one_select_each(report_data):
    s = report_data
    # 1. executions by status
    by_status = dict(s.execute(text("SELECT status, COUNT(*) FROM report_executions GROUP BY status")).all())
    assert by_status == {"completed": 2, "failed": 1, "running": 1, "cancelled": 1}
    # 2. success rate: completed among finished executions (2 of completed 2, failed 1, cancelled 1)
    assert s.execute(text("SELECT success_rate FROM report_summary")).scalar_one() == approx(50.0)
    # 3. average duration of completed executions (10 s and 60 s)
    assert s.execute(text("SELECT avg_duration_seconds FROM report_summary")).scalar_one() == approx(35.0)
    # 4. node failure rate: failed among node states that finished (completed or failed)
    rates = {
        (w, n): r
        for w, n, r in s.execute(text("SELECT workflow_id, node_id, failure_rate FROM report_node_stats")).all()
    }
    assert rates == {("alpha", "a"): approx(100 / 3), ("alpha", "b"): approx(0.0), ("beta", "x"): approx(0.0)}


def test_report_executions_has_one_row_per_execution(report_data):
    rows = {r["execution_id"]: r for r in _rows(report_data, "SELECT * FROM report_executions")}
    assert set(rows) == {"e1", "e2", "e3", "e4", "e5"}
    e1, e2, e3, e4 = rows["e1"], rows["e2"], rows["e3"], rows["e4"]
    assert (e1["workflow_id"], e1["workflow_version"], e1["trigger_kind"], e1["runs"]) == ("alpha", 1, "api", 1)
    assert e1["duration_seconds"] == approx(10.0)
    assert (e1["nodes_completed"], e1["nodes_failed"], e1["attempts"], e1["retries"]) == (2, 0, 4, 2)
    assert (e2["status"], e2["nodes_failed"], e2["nodes_blocked"], e2["attempts"], e2["retries"]) == (
        "failed", 1, 1, 2, 1,
    )  # fmt: skip
    assert (e3["runs"], e3["trigger_kind"], e3["nodes_completed"], e3["nodes_skipped"], e3["retries"]) == (
        2, "cli", 1, 1, 1,
    )  # fmt: skip
    assert e3["duration_seconds"] == approx(60.0)
    assert e4["duration_seconds"] is None and e4["status"] == "running"


def test_report_workflow_stats(report_data):
    rows = {r["workflow_id"]: r for r in _rows(report_data, "SELECT * FROM report_workflow_stats")}
    alpha, beta = rows["alpha"], rows["beta"]
    assert (alpha["executions"], alpha["completed"], alpha["failed"], alpha["cancelled"]) == (3, 2, 1, 0)
    assert alpha["success_rate"] == approx(200 / 3) and alpha["avg_duration_seconds"] == approx(35.0)
    assert alpha["max_duration_seconds"] == approx(60.0)
    assert (beta["executions"], beta["running"], beta["cancelled"], beta["success_rate"]) == (2, 1, 1, approx(0.0))
    assert beta["avg_duration_seconds"] is None
    if is_postgresql(report_data):  # percentiles where the database has them
        assert alpha["p50_duration_seconds"] == approx(35.0) and alpha["p95_duration_seconds"] == approx(57.5)
    else:
        assert alpha["p50_duration_seconds"] is None and alpha["p95_duration_seconds"] is None


def test_report_node_stats(report_data):
    rows = {(r["workflow_id"], r["node_id"]): r for r in _rows(report_data, "SELECT * FROM report_node_stats")}
    a, b = rows[("alpha", "a")], rows[("alpha", "b")]
    assert (a["node_states"], a["runs"], a["completed"], a["failed"], a["attempts"], a["retries"]) == (3, 3, 2, 1, 5, 2)
    assert a["avg_duration_seconds"] == approx(2.0) and a["avg_quality_score"] == approx(0.8)
    assert (b["node_states"], b["runs"], b["completed"], b["skipped"], b["blocked"], b["retries"]) == (3, 1, 1, 1, 1, 2)
    assert b["last_failed_at"] is None and a["last_failed_at"] is not None


def test_report_failures_lists_every_failed_attempt(report_data):
    rows = _rows(
        report_data,
        "SELECT execution_id, workflow_id, node_id, error_type, error_message, attempt FROM report_failures"
        " ORDER BY failed_at, event_id",
    )
    assert rows == [
        {"execution_id": "e2", "workflow_id": "alpha", "node_id": "a", "error_type": "ValueError",
         "error_message": "bad value", "attempt": 2},
        {"execution_id": "e3", "workflow_id": "alpha", "node_id": "a", "error_type": "RuntimeError",
         "error_message": "flaky", "attempt": 1},
    ]  # fmt: skip
