"""The report queries (``reporting.queries``) against the hand-computed dataset (``_report_data``), on SQLite and
PostgreSQL: windows and workflow filters, the same answers as the views over everything, and a day retention has
pruned read from the rollups with the same answer as before its raw rows were removed."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta

import pytest
from _report_data import D1, D2, at
from sqlalchemy import delete, select, text, update

from maestro_dagster.db.dialect import is_postgresql
from maestro_dagster.db.models import ExecutionEvent, ExecutionRun, NodeState, RollupDay, WorkflowExecution
from maestro_dagster.errors import ValidationError
from maestro_dagster.reporting import queries, rollups
from maestro_dagster.reporting.queries import Window

approx = pytest.approx
ALL = Window(datetime(2026, 9, 30, tzinfo=UTC), datetime(2026, 10, 3, tzinfo=UTC))


def _by(rows, *keys) -> dict:
    return {tuple(getattr(r, k) for k in keys) if len(keys) > 1 else getattr(r, keys[0]): r for r in rows}


def test_summary_per_workflow_and_in_total(report_data):
    report = queries.summary(report_data, ALL)
    assert report.pruned_days == ()
    alpha, beta = _by(report.rows, "workflow_id")["alpha"], _by(report.rows, "workflow_id")["beta"]
    assert (alpha.executions, alpha.completed, alpha.failed, alpha.cancelled, alpha.unfinished) == (3, 2, 1, 0, 0)
    assert alpha.success_rate == approx(200 / 3) and alpha.avg_duration_seconds == approx(35.0)
    assert alpha.max_duration_seconds == approx(60.0)
    assert (beta.executions, beta.cancelled, beta.unfinished, beta.success_rate) == (2, 1, 1, approx(0.0))
    assert beta.avg_duration_seconds is None and beta.p95_duration_seconds is None
    total = report.total
    assert (total.workflow_id, total.executions, total.completed, total.failed, total.cancelled) == (None, 5, 2, 1, 1)
    assert (total.unfinished, total.success_rate, total.avg_duration_seconds) == (1, approx(50.0), approx(35.0))
    if is_postgresql(report_data):  # percentile_cont over 10 s and 60 s
        assert alpha.p95_duration_seconds == approx(57.5) and total.p95_duration_seconds == approx(57.5)
    else:
        assert alpha.p95_duration_seconds is None and total.p95_duration_seconds is None


def test_summary_over_everything_equals_the_views(report_data):
    report = queries.summary(report_data, ALL)
    views = report_data.execute(text("SELECT * FROM report_workflow_stats ORDER BY workflow_id")).mappings().all()
    for row, view in zip(report.rows, views, strict=True):
        assert row.workflow_id == view["workflow_id"]
        for name in ("executions", "completed", "failed", "cancelled"):
            assert getattr(row, name) == view[name]
        assert row.unfinished == view["running"] + view["pending"] + view["paused"]
        for name in ("success_rate", "avg_duration_seconds", "max_duration_seconds", "p95_duration_seconds"):
            assert getattr(row, name) == (None if view[name] is None else approx(view[name]))
    summary = report_data.execute(text("SELECT success_rate, avg_duration_seconds FROM report_summary")).one()
    assert (report.total.success_rate, report.total.avg_duration_seconds) == (approx(summary[0]), approx(summary[1]))


def test_the_window_and_the_workflow_narrow_the_summary(report_data):
    s = report_data
    (beta,) = queries.summary(s, Window(*rollups.day_bounds(D2))).rows
    assert (beta.workflow_id, beta.executions) == ("beta", 2)
    (alpha,) = queries.summary(s, replace(ALL, workflow_id="alpha")).rows
    assert alpha.executions == 3
    # e3 was created at 11:59:59 on D1: the start is inclusive, the end exclusive
    (e3,) = queries.summary(s, Window(at(D1, 11, 59, 59), at(D1, 12))).rows
    assert (e3.executions, e3.completed, e3.avg_duration_seconds) == (1, 1, approx(60.0))
    assert queries.summary(s, Window(at(D1, 12), at(D1, 12, 59))).rows == []
    empty = queries.summary(s, replace(ALL, workflow_id="nope"))
    assert empty.rows == [] and (empty.total.executions, empty.total.success_rate) == (0, None)


def test_nodes(report_data):
    rows = _by(queries.nodes(report_data, ALL).rows, "workflow_id", "node_id")
    a, b, x = rows[("alpha", "a")], rows[("alpha", "b")], rows[("beta", "x")]
    assert (a.node_states, a.completed, a.failed, a.skipped, a.blocked, a.attempts, a.retries) == (3, 2, 1, 0, 0, 5, 2)
    assert (a.failure_rate, a.avg_duration_seconds, a.avg_quality_score) == (approx(100 / 3), approx(2.0), approx(0.8))
    assert (b.node_states, b.completed, b.skipped, b.blocked, b.failure_rate, b.retries) == (3, 1, 1, 1, 0.0, 2)
    assert (b.avg_duration_seconds, b.avg_quality_score) == (approx(4.0), approx(0.6))
    assert (x.node_states, x.completed, x.failure_rate, x.avg_quality_score) == (2, 1, 0.0, None)
    views = report_data.execute(text("SELECT * FROM report_node_stats")).mappings()
    for view in views:
        row = rows[(view["workflow_id"], view["node_id"])]
        for name in ("node_states", "completed", "failed", "skipped", "blocked", "attempts", "retries"):
            assert getattr(row, name) == view[name]
        for name in ("failure_rate", "avg_duration_seconds", "avg_quality_score"):
            assert getattr(row, name) == (None if view[name] is None else approx(view[name]))
    assert [(r.workflow_id, r.node_id) for r in queries.nodes(report_data, Window(*rollups.day_bounds(D2))).rows] == [
        ("beta", "x")
    ]


def test_failures_newest_first_with_a_limit(report_data):
    s = report_data
    rows = queries.failures(s, ALL).rows
    assert [(r.execution_id, r.node_id, r.error_type, r.error_message, r.attempt) for r in rows] == [
        ("e3", "a", "RuntimeError", "flaky", 1),  # same failed_at: the later event first
        ("e2", "a", "ValueError", "bad value", 2),
    ]
    assert rows[0].failed_at == at(D1, 13) and rows[0].workflow_id == "alpha"
    assert [r.execution_id for r in queries.failures(s, ALL, limit=1).rows] == ["e3"]
    assert queries.failures(s, replace(ALL, workflow_id="beta")).rows == []
    assert queries.failures(s, Window(at(D1, 13, 0, 1), at(D2, 0))).rows == []
    with pytest.raises(ValidationError, match="--limit 0"):
        queries.failures(s, ALL, limit=0)


def _prune(session, day, remove_rows: bool) -> None:
    """What retention does to ``day``: rollups built, pruning begun, then (``remove_rows``) the raw rows gone."""
    rollups.rebuild_day(session, day)
    session.execute(update(RollupDay).where(RollupDay.day == day).values(pruning_started_at=datetime.now(UTC)))
    if remove_rows:
        start, end = rollups.day_bounds(day)
        ids = select(WorkflowExecution.id).where(
            WorkflowExecution.created_at >= start, WorkflowExecution.created_at < end
        )
        for model in (ExecutionEvent, NodeState, ExecutionRun):
            session.execute(delete(model).where(model.execution_id.in_(ids)))
        session.execute(delete(WorkflowExecution).where(WorkflowExecution.id.in_(ids)))


def _without_p95(report) -> list[dict]:
    return [{**asdict(r), "p95_duration_seconds": None} for r in [*report.rows, report.total]]


@pytest.mark.parametrize("remove_rows", [False, True], ids=["pruning", "pruned"])
def test_a_pruned_day_reads_the_rollups_with_the_same_answer(report_data, remove_rows):
    s = report_data
    summary, node_rows = queries.summary(s, ALL), queries.nodes(s, ALL).rows
    _prune(s, D1, remove_rows)
    after = queries.summary(s, ALL)
    assert after.pruned_days == (D1,)
    assert _without_p95(after) == _without_p95(summary)  # no day counted twice while its raw rows are there
    assert queries.nodes(s, ALL).rows == node_rows
    alpha = _by(after.rows, "workflow_id")["alpha"]
    if remove_rows:  # the p95 comes from raw rows only; the failures too
        assert alpha.p95_duration_seconds is None
        assert queries.failures(s, ALL).rows == [] and queries.failures(s, ALL).pruned_days == (D1,)
    (only_alpha,) = queries.summary(s, replace(ALL, workflow_id="alpha")).rows
    assert asdict(only_alpha) | {"p95_duration_seconds": None} == asdict(alpha) | {"p95_duration_seconds": None}
    # a window that ends before D1 leaves it out
    assert queries.summary(s, Window(at(D1, 0) - timedelta(days=3), at(D1, 0))).rows == []


def test_two_consecutive_pruned_days_are_one_excluded_range(report_data):
    s = report_data
    summary = queries.summary(s, ALL)
    _prune(s, D1, True)
    _prune(s, D2, True)
    assert rollups.day_ranges([D2, D1]) == [(rollups.day_bounds(D1)[0], rollups.day_bounds(D2)[1])]
    after = queries.summary(s, ALL)
    assert after.pruned_days == (D1, D2) and _without_p95(after) == _without_p95(summary)


def test_pruned_days_are_merged_into_ranges():
    d4 = D2 + timedelta(days=2)
    assert rollups.day_ranges([d4, D1, D2, D1]) == [
        (rollups.day_bounds(D1)[0], rollups.day_bounds(D2)[1]),
        rollups.day_bounds(d4),
    ]
    assert rollups.day_ranges([]) == []


def test_spans_and_ends():
    assert queries.parse_since("7d") == timedelta(days=7)
    assert queries.parse_since(" 12H ") == timedelta(hours=12)
    assert queries.parse_since("30m") == timedelta(minutes=30)
    for bad in ("7", "0d", "-1d", "1w", "1.5d", ""):
        with pytest.raises(ValidationError, match="7d, 12h or 30m"):
            queries.parse_since(bad)
    assert queries.parse_until("2026-10-03") == datetime(2026, 10, 3, tzinfo=UTC)
    assert queries.parse_until("2026-10-03T14:00:00+02:00") == datetime(2026, 10, 3, 12, tzinfo=UTC)
    with pytest.raises(ValidationError, match="ISO date"):
        queries.parse_until("yesterday")
    window = Window.since("1d", until=at(D2, 12), workflow_id="w")
    assert (window.start, window.end, window.workflow_id, window.days) == (at(D1, 0) + timedelta(hours=12),
                                                                           at(D2, 12), "w", (D1, D2))  # fmt: skip
