"""The reports of the web UI (``/api/reports``): executions per UTC day (``daily``) and the nodes that fail most
(``failing_nodes``) over a ``queries.Window``, as typed rows.

They follow ``reporting.queries``' rules (its docstring): an execution belongs to the UTC day of its ``created_at``;
raw rows for every day but those retention has begun to prune, which come whole from the rollups; the database
does the aggregation. Functions take the caller's session and never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Float, and_, cast, func, null, select
from sqlalchemy.orm import Session

from maestro_dagster.db.dialect import is_postgresql, percentile, seconds_between
from maestro_dagster.db.models import DailyDurationBuckets, DailyWorkflowStats, WorkflowExecution
from maestro_dagster.reporting.queries import Window, _raw_where, _rollup_where, _total, nodes_select, pruned_days
from maestro_dagster.reporting.rollups import count_where
from maestro_dagster.states import WorkflowStatus


@dataclass(frozen=True)
class DayRow:
    """One UTC day's executions in the window (a pruned day: whole, from ``daily_workflow_stats``)."""

    day: date
    executions: int
    completed: int
    failed: int
    cancelled: int
    success_rate: float | None  # percent of finished executions that completed
    p95_duration_seconds: float | None  # see ``daily``


def utc_day(session: Session, column: Any) -> Any:
    """The UTC day of a timestamp column (a date on PostgreSQL, ``YYYY-MM-DD`` text on SQLite)."""
    return func.date(func.timezone("UTC", column)) if is_postgresql(session) else func.date(column)


def daily(session: Session, window: Window) -> list[DayRow]:
    """Executions per UTC day (days with executions only, oldest first). The p95 duration of completed
    executions is exact on PostgreSQL (the raw rows; for a pruned day of one workflow its rollup's p95); otherwise
    (SQLite, or a pruned day over all workflows) it is the upper bound of the ``daily_duration_buckets`` bucket
    holding the 95th percentile, NULL for a day not rolled up or whose 95th percentile is in the +Inf bucket."""
    pruned = pruned_days(session, window)
    e, d = WorkflowExecution, DailyWorkflowStats
    day = utc_day(session, e.created_at)
    duration = seconds_between(session, e.started_at, e.completed_at)
    done = and_(e.status == WorkflowStatus.COMPLETED, e.started_at.is_not(None), e.completed_at.is_not(None))
    raw = select(
        day.label("day"),
        func.count().label("executions"),
        count_where(e.status == WorkflowStatus.COMPLETED).label("completed"),
        count_where(e.status == WorkflowStatus.FAILED).label("failed"),
        count_where(e.status == WorkflowStatus.CANCELLED).label("cancelled"),
        percentile(session, 0.95, duration, done).label("p95"),
    ).where(*_raw_where(window, pruned))
    found = [dict(r) for r in session.execute(raw.group_by(day)).mappings()]
    if pruned:
        p95 = func.max(d.duration_p95_seconds) if window.workflow_id else cast(null(), Float)
        sums = (_total(getattr(d, n)).label(n) for n in ("executions", "completed", "failed", "cancelled"))
        rollup = select(d.day, *sums, p95.label("p95")).where(*_rollup_where(d, window, pruned)).group_by(d.day)
        found += [dict(r) for r in session.execute(rollup).mappings()]
    for row in found:
        row["day"] = date.fromisoformat(str(row["day"]))
    missing = [r["day"] for r in found if r["p95"] is None and r["completed"]]
    estimates = _bucket_p95(session, missing, window.workflow_id) if missing else {}
    return [
        DayRow(r["day"], r["executions"], r["completed"], r["failed"], r["cancelled"],
               _rate_of(r["completed"], r["completed"] + r["failed"] + r["cancelled"]),
               r["p95"] if r["p95"] is not None else estimates.get(r["day"]))
        for r in sorted(found, key=lambda r: r["day"])
        if r["executions"]
    ]  # fmt: skip


def _rate_of(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def _bucket_p95(session: Session, days: list[date], workflow_id: str | None) -> dict[date, float]:
    """Per day: the smallest bucket bound holding 95 % of the day's completed executions (``daily_duration_buckets``
    summed over the workflows, or of one); days without buckets or in the +Inf bucket are left out."""
    b = DailyDurationBuckets
    stmt = select(b.day, b.bucket, b.le_seconds, _total(b.executions).label("n")).where(b.day.in_(days))
    if workflow_id is not None:
        stmt = stmt.where(b.workflow_id == workflow_id)
    counts: dict[date, list[tuple[float | None, int]]] = {}
    for row in session.execute(stmt.group_by(b.day, b.bucket, b.le_seconds).order_by(b.day, b.bucket)):
        counts.setdefault(row.day, []).append((row.le_seconds, row.n))
    out: dict[date, float] = {}
    for day_, buckets in counts.items():
        total = buckets[-1][1]  # cumulative: the last (+Inf) bucket counts them all
        bound = next((le for le, n in buckets if total and n >= 0.95 * total), None)
        if bound is not None:
            out[day_] = float(bound)
    return out


@dataclass(frozen=True)
class FailingNodeRow:
    workflow_id: str
    node_id: str
    failures: int  # node states that ended failed
    runs: int  # node states that finished (completed or failed): the denominator of ``failure_rate``


def failing_nodes(session: Session, window: Window, limit: int = 10) -> list[FailingNodeRow]:
    """The ``limit`` nodes with the most failed node states in the window (``nodes_select``: raw rows and, for
    pruned days, ``daily_node_stats``), most failures first."""
    p = nodes_select(session, window, pruned_days(session, window)).subquery("node_report").c
    stmt = (
        select(p.workflow_id, p.node_id, p.failed, p.completed)
        .where(p.failed > 0)
        .order_by(p.failed.desc(), p.workflow_id, p.node_id)
        .limit(limit)
    )
    return [FailingNodeRow(r.workflow_id, r.node_id, r.failed, r.failed + r.completed) for r in session.execute(stmt)]
