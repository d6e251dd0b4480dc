"""Daily rollups (``reporting.rollups``) against the hand-computed dataset, on SQLite and PostgreSQL: rebuilding a
day twice gives the same rows, a tampered rollup is found by the comparison with the raw rows, and a day retention
has begun to prune is kept as it is."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from _report_data import D1, D2
from sqlalchemy import select, update

from maestro_dagster.db.dialect import is_postgresql
from maestro_dagster.db.models import DailyDurationBuckets, DailyNodeStats, DailyWorkflowStats, RollupDay
from maestro_dagster.reporting import rollups


def _table(session, model) -> list[dict]:
    columns = list(model.__table__.columns)
    return [dict(r) for r in session.execute(select(*columns).order_by(*model.__table__.primary_key)).mappings()]


def test_a_day_rolls_up_to_the_hand_computed_rows(report_data):
    s = report_data
    result = rollups.rebuild_day(s, D1)
    assert (result.executions, result.workflows, result.nodes, result.kept) == (3, 1, 2, False)
    (alpha,) = _table(s, DailyWorkflowStats)
    assert {k: alpha[k] for k in ("executions", "completed", "failed", "cancelled", "unfinished", "runs")} == {
        "executions": 3, "completed": 2, "failed": 1, "cancelled": 0, "unfinished": 0, "runs": 4,
    }  # fmt: skip
    assert (alpha["duration_count"], alpha["duration_sum_seconds"], alpha["duration_max_seconds"]) == (2, 70.0, 60.0)
    assert (alpha["nodes_completed"], alpha["nodes_failed"], alpha["nodes_skipped"], alpha["nodes_blocked"]) == (
        3, 1, 1, 1,
    )  # fmt: skip
    assert (alpha["node_attempts"], alpha["node_retries"]) == (8, 4)
    if is_postgresql(s):
        assert (alpha["duration_p50_seconds"], alpha["duration_p95_seconds"]) == (35.0, pytest.approx(57.5))
    nodes = {r["node_id"]: r for r in _table(s, DailyNodeStats)}
    assert (nodes["a"]["node_states"], nodes["a"]["failed"], nodes["a"]["attempts"], nodes["a"]["retries"]) == (
        3,
        1,
        5,
        2,
    )
    assert (nodes["a"]["duration_count"], nodes["a"]["duration_sum_seconds"]) == (3, 6.0)
    assert (nodes["b"]["quality_count"], nodes["b"]["quality_sum"]) == (1, 0.6)
    buckets = {r["le_seconds"]: r["executions"] for r in _table(s, DailyDurationBuckets)}
    assert (buckets[5], buckets[15], buckets[60], buckets[None]) == (0, 1, 2, 2)
    state = s.get(RollupDay, D1)
    assert state.materialized_at is not None and state.executions == 3 and state.check_passed is None


def test_the_second_day_counts_unfinished_and_cancelled(report_data):
    rollups.rebuild_day(report_data, D2)
    (beta,) = _table(report_data, DailyWorkflowStats)
    assert (beta["workflow_id"], beta["executions"], beta["cancelled"], beta["unfinished"]) == ("beta", 2, 1, 1)
    assert (beta["duration_count"], beta["duration_sum_seconds"], beta["duration_max_seconds"]) == (0, 0.0, None)


def test_rebuilding_a_day_twice_gives_the_same_rows(report_data):
    rollups.rebuild_day(report_data, D1)
    first = {m: _table(report_data, m) for m in (DailyWorkflowStats, DailyNodeStats, DailyDurationBuckets)}
    rollups.rebuild_day(report_data, D1)
    assert {m: _table(report_data, m) for m in first} == first
    assert rollups.check_day(report_data, D1) == []
    assert report_data.get(RollupDay, D1).check_passed is True


def test_a_tampered_rollup_fails_the_check(report_data):
    rollups.rebuild_day(report_data, D1)
    report_data.execute(update(DailyWorkflowStats).where(DailyWorkflowStats.day == D1).values(failed=0))
    report_data.execute(update(DailyNodeStats).where(DailyNodeStats.node_id == "b").values(retries=7))
    found = rollups.check_day(report_data, D1)
    assert any("daily_workflow_stats" in f and "failed is 0" in f for f in found)
    assert any("daily_node_stats" in f and "retries is 7" in f for f in found)
    assert report_data.get(RollupDay, D1).check_passed is False


def test_a_day_never_materialized_fails_the_check(report_data):
    found = rollups.check_day(report_data, D1)
    assert found and "never materialized" in found[0]


def test_a_pruned_day_is_kept_as_it_is(report_data):
    rollups.rebuild_day(report_data, D1)
    before = _table(report_data, DailyWorkflowStats)
    report_data.get(RollupDay, D1).pruning_started_at = datetime.now(UTC)
    report_data.flush()
    result = rollups.rebuild_day(report_data, D1)
    assert result.kept and _table(report_data, DailyWorkflowStats) == before
    assert rollups.differences(report_data, D1) == []
