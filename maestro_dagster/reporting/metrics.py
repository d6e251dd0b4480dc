"""What ``/metrics`` reports of the tables, computed without scanning them whole on every scrape.

Every figure is the sum of two parts: the rollup tables for the days that have been rolled up
(``rollup_days.materialized_at``; a few rows per workflow and day) and the raw rows of the executions of every other
day (usually today and yesterday: a few index ranges on ``workflow_executions.created_at``). Executions still
pending, running or paused are counted from the raw rows whatever their day (the ``status`` index), so a day rolled
up while one of its executions ran does not hide it. An execution that ends after its day was rolled up shows in
the terminal counts when the day is rebuilt (the daily schedule rebuilds yesterday; ``maestro rollups build``
any day). Counts survive retention, as the rollups do. Missed SLAs (``maestro_sla_missed_total``) are counted from
the ``sla_missed`` event rows (the ``event_type`` index), so retention of the events removes them from the count.
Data functions: they take the caller's session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from maestro_dagster.db.dialect import seconds_between
from maestro_dagster.db.models import (
    DailyDurationBuckets,
    DailyNodeStats,
    DailyWorkflowStats,
    ExecutionEvent,
    WorkflowExecution,
)
from maestro_dagster.reporting.rollups import (
    BUCKET_BOUNDS,
    bucket_aggregates,
    materialized_days,
    node_aggregates,
    outside_days,
)
from maestro_dagster.states import EventType, WorkflowStatus

TERMINAL = tuple(s for s in WorkflowStatus if s.is_terminal)
ACTIVE = tuple(s for s in WorkflowStatus if not s.is_terminal)


@dataclass
class DurationHistogram:
    """Completed executions' durations: cumulative counts per ``BUCKET_BOUNDS`` then +Inf, and their sum."""

    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKET_BOUNDS) + 1))
    sum_seconds: float = 0.0


@dataclass
class NodeFigures:
    failures: int = 0  # node states that ended failed
    retries: int = 0  # attempts beyond the first (Dagster retries and re-executions)
    duration_sum_seconds: float = 0.0
    duration_count: int = 0


@dataclass
class TableMetrics:
    executions: dict[tuple[str, str], int] = field(default_factory=dict)  # (workflow, status) -> executions
    durations: dict[str, DurationHistogram] = field(default_factory=dict)  # workflow -> histogram
    nodes: dict[tuple[str, str], NodeFigures] = field(default_factory=dict)  # (workflow, node) -> figures
    sla_missed: dict[tuple[str, str], int] = field(default_factory=dict)  # (workflow, scope) -> missed SLAs


def collect(session: Session) -> TableMetrics:
    """The figures ``/metrics`` exposes (see the module docstring for how they are read)."""
    metrics = TableMetrics()
    raw = outside_days(materialized_days(session))
    _executions(session, metrics, raw)
    _durations(session, metrics, raw)
    _nodes(session, metrics, raw)
    _sla_missed(session, metrics)
    return metrics


def _sla_missed(session: Session, metrics: TableMetrics) -> None:
    """``sla_missed`` rows by workflow and scope (``workflow`` when the row has no node, else ``node``)."""
    ev, e = ExecutionEvent, WorkflowExecution
    stmt = (
        select(e.workflow_id, ev.node_id.is_(None), func.count())
        .join(e, e.id == ev.execution_id)
        .where(ev.event_type == EventType.SLA_MISSED)
        .group_by(e.workflow_id, ev.node_id.is_(None))
    )
    for workflow_id, is_workflow, n in session.execute(stmt):
        _add(metrics.sla_missed, (workflow_id, "workflow" if is_workflow else "node"), n)


def _add(counts: dict, key: tuple[str, str], value: int) -> None:
    if value:
        counts[key] = counts.get(key, 0) + int(value)


def _executions(session: Session, metrics: TableMetrics, raw: Any) -> None:
    w, e = DailyWorkflowStats, WorkflowExecution
    rolled = select(w.workflow_id, func.sum(w.completed), func.sum(w.failed), func.sum(w.cancelled)).group_by(
        w.workflow_id
    )
    for workflow_id, completed, failed, cancelled in session.execute(rolled):
        _add(metrics.executions, (workflow_id, WorkflowStatus.COMPLETED.value), completed)
        _add(metrics.executions, (workflow_id, WorkflowStatus.FAILED.value), failed)
        _add(metrics.executions, (workflow_id, WorkflowStatus.CANCELLED.value), cancelled)
    terminal = select(e.workflow_id, e.status, func.count()).where(and_(raw, e.status.in_(TERMINAL)))
    active = select(e.workflow_id, e.status, func.count()).where(e.status.in_(ACTIVE))
    for stmt in (terminal, active):
        for workflow_id, status, n in session.execute(stmt.group_by(e.workflow_id, e.status)):
            _add(metrics.executions, (workflow_id, WorkflowStatus(status).value), n)


def _durations(session: Session, metrics: TableMetrics, raw: Any) -> None:
    b, w, e = DailyDurationBuckets, DailyWorkflowStats, WorkflowExecution

    def histogram(workflow_id: str) -> DurationHistogram:
        return metrics.durations.setdefault(workflow_id, DurationHistogram())

    for workflow_id, bucket, n in session.execute(
        select(b.workflow_id, b.bucket, func.sum(b.executions)).group_by(b.workflow_id, b.bucket)
    ):
        if 0 <= bucket <= len(BUCKET_BOUNDS):
            histogram(workflow_id).buckets[bucket] += int(n or 0)
    for workflow_id, total in session.execute(
        select(w.workflow_id, func.sum(w.duration_sum_seconds)).group_by(w.workflow_id)
    ):
        histogram(workflow_id).sum_seconds += float(total or 0.0)
    for workflow_id, counts in bucket_aggregates(session, raw).items():
        buckets = histogram(workflow_id).buckets
        for i, n in enumerate(counts):
            buckets[i] += int(n)
    done = and_(raw, e.status == WorkflowStatus.COMPLETED, e.started_at.is_not(None), e.completed_at.is_not(None))
    duration = seconds_between(session, e.started_at, e.completed_at)
    for workflow_id, total in session.execute(
        select(e.workflow_id, func.sum(duration)).where(done).group_by(e.workflow_id)
    ):
        histogram(workflow_id).sum_seconds += float(total or 0.0)
    for workflow_id in [k for k, h in metrics.durations.items() if not h.buckets[-1]]:
        del metrics.durations[workflow_id]  # no completed execution: no histogram


def _nodes(session: Session, metrics: TableMetrics, raw: Any) -> None:
    n = DailyNodeStats
    rolled = select(
        n.workflow_id,
        n.node_id,
        func.sum(n.failed).label("failed"),
        func.sum(n.retries).label("retries"),
        func.sum(n.duration_sum_seconds).label("duration_sum_seconds"),
        func.sum(n.duration_count).label("duration_count"),
    ).group_by(n.workflow_id, n.node_id)
    rows = [dict(r) for r in session.execute(rolled).mappings()] + node_aggregates(session, raw)
    for row in rows:
        figures = metrics.nodes.setdefault((row["workflow_id"], row["node_id"]), NodeFigures())
        figures.failures += int(row["failed"] or 0)
        figures.retries += int(row["retries"] or 0)
        figures.duration_sum_seconds += float(row["duration_sum_seconds"] or 0.0)
        figures.duration_count += int(row["duration_count"] or 0)
