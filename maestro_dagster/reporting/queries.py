"""The report queries behind ``maestro report``: statistics per workflow (``summary``), per workflow and node
(``nodes``) and the latest failed node attempts (``failures``) over a window of time, as typed rows.

Where the numbers come from, written here once:

- An execution belongs to its ``created_at`` (for the daily rollups: the UTC day of it, ``reporting.rollups``).
  ``summary`` and ``nodes`` count the executions created in ``[window.start, window.end)`` and their node states;
  ``failures`` lists the ``report_failures`` rows whose ``failed_at`` is in the window.
- The raw rows (``workflow_executions``, ``node_states``, with the definitions of the views of migration 0006) give
  every day except the UTC days retention has begun to prune (``rollup_days.pruning_started_at`` set): those days
  come whole from ``daily_workflow_stats`` / ``daily_node_stats`` (a pruned day the window touches counts whole)
  and the raw rows left of them are left out (a few ``created_at`` ranges: consecutive days merged), so nothing is
  counted twice while a pruning is under way.
- The two parts are per-workflow sums added in one SELECT (``UNION ALL`` then ``SUM``); every rate and average is
  computed from the sums: ``success_rate = 100 * completed / (completed + failed + cancelled)`` executions,
  ``failure_rate = 100 * failed / (completed + failed)`` node states, averages ``sum / count``. Durations are those
  of completed executions, in seconds rounded to milliseconds (``db.dialect.seconds_between``). The p95 duration
  comes from the raw rows only (the rollups keep a per-day p95, which cannot be combined) and is NULL on SQLite;
  failures come from the raw rows only (the rollups keep counts, not messages).

The database does every aggregation. Functions take the caller's session and never commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    Integer,
    Select,
    String,
    and_,
    case,
    cast,
    column,
    func,
    null,
    select,
    union_all,
)
from sqlalchemy import table as sql_table
from sqlalchemy.orm import Session

from maestro_dagster.db.dialect import percentile, seconds_between
from maestro_dagster.db.models import DailyNodeStats, DailyWorkflowStats, RollupDay, WorkflowExecution
from maestro_dagster.db.types import UTCDateTime
from maestro_dagster.errors import ValidationError
from maestro_dagster.reporting.rollups import count_where, node_select, outside_days
from maestro_dagster.states import WorkflowStatus

DEFAULT_SINCE = "7d"
_SPAN = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
_UNFINISHED = (WorkflowStatus.PENDING, WorkflowStatus.RUNNING, WorkflowStatus.PAUSED)

#: The ``report_failures`` view (migration 0006), as much of it as the queries name.
REPORT_FAILURES = sql_table(
    "report_failures",
    column("event_id", BigInteger),
    column("failed_at", UTCDateTime()),
    column("workflow_id", String),
    column("execution_id", String),
    column("node_id", String),
    column("attempt", Integer),
    column("error_type", String),
    column("error_message", String),
    column("dagster_run_id", String),
)


def parse_since(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m``: a positive whole number of days, hours or minutes."""
    match = _SPAN.match(text.lower())
    if match is None or int(match[1]) == 0:
        raise ValidationError(
            f"--since {text!r} is not a span of time: write a positive whole number followed by d (days), "
            "h (hours) or m (minutes), such as 7d, 12h or 30m."
        )
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def parse_until(text: str) -> datetime:
    """An ISO date (``2026-10-03``: its midnight) or date and time; without a zone it is UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(
            f"--until {text!r} is not a date or time: write an ISO date or date and time in UTC, "
            "such as 2026-10-03 or 2026-10-03T12:00:00Z."
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class Window:
    """The executions (and failures) a report covers: ``[start, end)``, of one workflow or of all."""

    start: datetime
    end: datetime
    workflow_id: str | None = None

    @classmethod
    def since(cls, span: str | timedelta, *, until: datetime | None = None, workflow_id: str | None = None) -> Window:
        """The ``span`` (``7d``, or a timedelta) that ends at ``until`` (default: now)."""
        end = until or datetime.now(UTC)
        return cls(end - (parse_since(span) if isinstance(span, str) else span), end, workflow_id)

    @property
    def days(self) -> tuple[date, date]:
        """The first and last UTC day the window touches."""
        return self.start.astimezone(UTC).date(), (self.end - timedelta(microseconds=1)).astimezone(UTC).date()


@dataclass(frozen=True)
class SummaryRow:
    """One workflow's executions in the window (``workflow_id`` None: every workflow's, the total)."""

    workflow_id: str | None
    executions: int
    completed: int
    failed: int
    cancelled: int
    unfinished: int  # pending, running or paused (for a pruned day: when it was rolled up)
    success_rate: float | None  # percent of finished executions that completed
    avg_duration_seconds: float | None  # completed executions
    max_duration_seconds: float | None
    p95_duration_seconds: float | None  # raw rows only; NULL on SQLite


@dataclass(frozen=True)
class NodeRow:
    """One node of one workflow, over the node states of the window's executions."""

    workflow_id: str
    node_id: str
    node_states: int
    completed: int
    failed: int
    skipped: int
    blocked: int
    failure_rate: float | None  # percent of finished (completed or failed) node states that failed
    attempts: int
    retries: int
    avg_duration_seconds: float | None
    avg_quality_score: float | None


@dataclass(frozen=True)
class FailureRow:
    """One failed node attempt (a ``report_failures`` row)."""

    event_id: int
    failed_at: datetime
    workflow_id: str
    execution_id: str
    node_id: str | None
    attempt: int | None
    error_type: str | None
    error_message: str | None
    dagster_run_id: str | None


@dataclass(frozen=True)
class SummaryReport:
    window: Window
    pruned_days: tuple[date, ...]  # read from the rollups
    rows: list[SummaryRow]
    total: SummaryRow


@dataclass(frozen=True)
class NodesReport:
    window: Window
    pruned_days: tuple[date, ...]
    rows: list[NodeRow]


@dataclass(frozen=True)
class FailuresReport:
    window: Window
    pruned_days: tuple[date, ...]  # their failures are gone with their raw rows
    rows: list[FailureRow]


# ---- where the rows come from -----------------------------------------------------------------------------


def pruned_days(session: Session, window: Window) -> tuple[date, ...]:
    """The UTC days the window touches whose raw rows retention has begun to remove (``rollups.is_pruned``)."""
    first, last = window.days
    day = RollupDay.day
    stmt = select(day).where(RollupDay.pruning_started_at.is_not(None), day >= first, day <= last).order_by(day)
    return tuple(session.scalars(stmt))


def _raw_where(window: Window, pruned: tuple[date, ...]) -> list[Any]:
    """The raw executions of the window: created in it, of its workflow, outside the pruned days (a few
    ``created_at`` ranges: ``rollups.outside_days``)."""
    created = WorkflowExecution.created_at
    where: list[Any] = [created >= window.start, created < window.end]
    if window.workflow_id is not None:
        where.append(WorkflowExecution.workflow_id == window.workflow_id)
    where.append(outside_days(pruned))
    return where


def _rollup_where(model: Any, window: Window, pruned: tuple[date, ...]) -> list[Any]:
    where: list[Any] = [model.day.in_(pruned)]
    if window.workflow_id is not None:
        where.append(model.workflow_id == window.workflow_id)
    return where


def _total(expr: Any) -> Any:
    """The sum of a count over the parts (an integer on both databases: PostgreSQL's SUM of bigint is numeric)."""
    return cast(func.coalesce(func.sum(expr), 0), BigInteger)


def _rate(part: Any, whole: Any) -> Any:
    """``100 * part / whole`` as a float, NULL when ``whole`` is 0."""
    return cast(100.0 * part / func.nullif(whole, 0), Float)


def _mean(total: Any, count: Any) -> Any:
    return cast(func.sum(total) / func.nullif(func.sum(count), 0), Float)


def _parts(raw: Any, rollup: Any, pruned: tuple[date, ...]) -> Any:
    """The raw part, plus the rollup part when pruned days are in the window, as one subquery."""
    both: Any = union_all  # called untyped: mypy 2.4 crashes inferring its overloads' tuple types
    return (both(raw, rollup) if pruned else raw).subquery("parts")


# ---- summary ----------------------------------------------------------------------------------------------


def summary_select(session: Session, window: Window, pruned: tuple[date, ...], by_workflow: bool) -> Select[Any]:
    """The summary SELECT: one row per workflow (``by_workflow``) or one row over all of them."""
    e = WorkflowExecution
    duration = seconds_between(session, e.started_at, e.completed_at)
    done = and_(e.status == WorkflowStatus.COMPLETED, e.started_at.is_not(None), e.completed_at.is_not(None))
    raw = select(
        *([e.workflow_id.label("workflow_id")] if by_workflow else []),
        func.count().label("executions"),
        count_where(e.status == WorkflowStatus.COMPLETED).label("completed"),
        count_where(e.status == WorkflowStatus.FAILED).label("failed"),
        count_where(e.status == WorkflowStatus.CANCELLED).label("cancelled"),
        count_where(e.status.in_(_UNFINISHED)).label("unfinished"),
        count_where(done).label("duration_count"),
        func.coalesce(func.sum(case((done, duration))), 0.0).label("duration_sum_seconds"),
        func.max(case((done, duration))).label("duration_max_seconds"),
        percentile(session, 0.95, duration, done).label("p95_duration_seconds"),
    ).where(*_raw_where(window, pruned))
    d = DailyWorkflowStats
    rollup = select(
        *([d.workflow_id.label("workflow_id")] if by_workflow else []),
        *(
            func.coalesce(func.sum(getattr(d, name)), 0).label(name)
            for name in ("executions", "completed", "failed", "cancelled", "unfinished", "duration_count")
        ),
        func.coalesce(func.sum(d.duration_sum_seconds), 0.0).label("duration_sum_seconds"),
        func.max(d.duration_max_seconds).label("duration_max_seconds"),
        cast(null(), Float).label("p95_duration_seconds"),
    ).where(*_rollup_where(d, window, pruned))
    if by_workflow:
        raw, rollup = raw.group_by(e.workflow_id), rollup.group_by(d.workflow_id)
    p = _parts(raw, rollup, pruned).c
    completed, failed, cancelled = (func.coalesce(func.sum(c), 0) for c in (p.completed, p.failed, p.cancelled))
    stmt = select(
        p.workflow_id if by_workflow else cast(null(), String).label("workflow_id"),
        *(_total(getattr(p, n)).label(n) for n in ("executions", "completed", "failed", "cancelled", "unfinished")),
        _rate(completed, completed + failed + cancelled).label("success_rate"),
        _mean(p.duration_sum_seconds, p.duration_count).label("avg_duration_seconds"),
        cast(func.max(p.duration_max_seconds), Float).label("max_duration_seconds"),
        cast(func.max(p.p95_duration_seconds), Float).label("p95_duration_seconds"),
    )
    return stmt.group_by(p.workflow_id).order_by(p.workflow_id) if by_workflow else stmt


def summary(session: Session, window: Window) -> SummaryReport:
    """Executions per workflow in the window, and over all of them."""
    pruned = pruned_days(session, window)
    rows = [SummaryRow(**r) for r in session.execute(summary_select(session, window, pruned, True)).mappings()]
    total = SummaryRow(**session.execute(summary_select(session, window, pruned, False)).mappings().one())
    return SummaryReport(window, pruned, rows, total)


# ---- nodes ------------------------------------------------------------------------------------------------

_NODE_COUNTS = ("node_states", "completed", "failed", "skipped", "blocked", "attempts", "retries")


def nodes_select(session: Session, window: Window, pruned: tuple[date, ...]) -> Select[Any]:
    """The per-node SELECT: one row per workflow and node."""
    raw = node_select(and_(*_raw_where(window, pruned)))
    d = DailyNodeStats
    rollup = (
        select(
            d.workflow_id.label("workflow_id"),
            d.node_id.label("node_id"),
            *(func.sum(getattr(d, name)).label(name) for name in (*_NODE_COUNTS, "duration_count")),
            func.sum(d.duration_sum_seconds).label("duration_sum_seconds"),
            func.sum(d.quality_count).label("quality_count"),
            func.sum(d.quality_sum).label("quality_sum"),
        )
        .where(*_rollup_where(d, window, pruned))
        .group_by(d.workflow_id, d.node_id)
    )
    p = _parts(raw, rollup, pruned).c
    completed, failed = func.sum(p.completed), func.sum(p.failed)
    return (
        select(
            p.workflow_id,
            p.node_id,
            *(_total(getattr(p, name)).label(name) for name in _NODE_COUNTS[:5]),
            _rate(failed, completed + failed).label("failure_rate"),
            *(_total(getattr(p, name)).label(name) for name in _NODE_COUNTS[5:]),
            _mean(p.duration_sum_seconds, p.duration_count).label("avg_duration_seconds"),
            _mean(p.quality_sum, p.quality_count).label("avg_quality_score"),
        )
        .group_by(p.workflow_id, p.node_id)
        .order_by(p.workflow_id, p.node_id)
    )


def nodes(session: Session, window: Window) -> NodesReport:
    """Node statistics per workflow and node over the window's executions."""
    pruned = pruned_days(session, window)
    rows = [NodeRow(**r) for r in session.execute(nodes_select(session, window, pruned)).mappings()]
    return NodesReport(window, pruned, rows)


# ---- failures ---------------------------------------------------------------------------------------------


def failures(session: Session, window: Window, limit: int = 20) -> FailuresReport:
    """The latest ``limit`` failed node attempts of the window (by ``failed_at``), newest first; raw rows only."""
    if limit < 1:
        raise ValidationError(f"--limit {limit} lists nothing: give a positive number of failures to list.")
    f = REPORT_FAILURES.c
    stmt = select(*REPORT_FAILURES.c).where(f.failed_at >= window.start, f.failed_at < window.end)
    if window.workflow_id is not None:
        stmt = stmt.where(f.workflow_id == window.workflow_id)
    stmt = stmt.order_by(f.failed_at.desc(), f.event_id.desc()).limit(limit)
    rows = [FailureRow(**r) for r in session.execute(stmt).mappings()]
    return FailuresReport(window, pruned_days(session, window), rows)
