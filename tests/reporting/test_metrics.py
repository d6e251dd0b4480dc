"""``reporting.metrics.collect`` over the hand-computed dataset, on SQLite and PostgreSQL: the same figures whether
a day is read from its raw rows or from its rollups (never both), and active executions counted from the raw rows
even on a rolled-up day."""

from __future__ import annotations

import pytest
from _report_data import D1, D2
from sqlalchemy import update

from maestro_dagster.db.models import WorkflowExecution
from maestro_dagster.reporting import rollups
from maestro_dagster.reporting.metrics import collect

EXECUTIONS = {("alpha", "completed"): 2, ("alpha", "failed"): 1, ("beta", "running"): 1, ("beta", "cancelled"): 1}


def _figures(session):
    m = collect(session)
    nodes = {k: (v.failures, v.retries, v.duration_count, round(v.duration_sum_seconds, 6)) for k, v in m.nodes.items()}
    durations = {k: (v.buckets, round(v.sum_seconds, 6)) for k, v in m.durations.items()}
    return m.executions, durations, nodes


def test_figures_from_raw_rows(report_data):
    executions, durations, nodes = _figures(report_data)
    assert executions == EXECUTIONS
    # alpha's completed executions took 10 s and 60 s: buckets 1, 5, 15, 30, 60, ... then +Inf
    assert durations == {"alpha": ([0, 0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2], 70.0)}
    assert nodes[("alpha", "a")] == (1, 2, 3, 6.0)
    assert nodes[("alpha", "b")] == (0, 2, 1, 4.0)
    assert nodes[("beta", "x")] == (0, 0, 1, 5.0)


@pytest.mark.parametrize("days", [[D1], [D2], [D1, D2]])
def test_rolled_up_days_give_the_same_figures_and_count_once(report_data, days):
    before = _figures(report_data)
    for day in days:
        rollups.rebuild_day(report_data, day)
    assert _figures(report_data) == before


def test_an_execution_still_running_on_a_rolled_up_day_is_counted_from_the_raw_rows(report_data):
    rollups.rebuild_day(report_data, D2)
    executions, _, _ = _figures(report_data)
    assert executions[("beta", "running")] == 1
    # it completes after the rollup: terminal counts follow when the day is rebuilt
    report_data.execute(update(WorkflowExecution).where(WorkflowExecution.id == "e4").values(status="completed"))
    assert ("beta", "running") not in _figures(report_data)[0]
    rollups.rebuild_day(report_data, D2)
    assert _figures(report_data)[0][("beta", "completed")] == 1
