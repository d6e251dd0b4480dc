"""The daily rollups: how one UTC day's rows of ``daily_workflow_stats``, ``daily_node_stats`` and
``daily_duration_buckets`` are computed from the raw tables, rebuilt, compared with the raw rows, and recorded in
``rollup_days``.

The rule, written here once: an execution belongs to the UTC day of its ``created_at`` (when it was launched;
indexed, never NULL), and its nodes, runs and durations to that day too. Durations are those of completed
executions. Every aggregate is computed by the database; Python only pairs the three small per-workflow results.

A day whose raw rows retention has begun to remove (``rollup_days.pruning_started_at``) is never rebuilt: its
rollups are the record from then on. Functions take the caller's session and never commit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, delete, func, not_, or_, select, true
from sqlalchemy.orm import Session

from maestro_dagster.db.dialect import percentile, seconds_between, upsert
from maestro_dagster.db.models import (
    DailyDurationBuckets,
    DailyNodeStats,
    DailyWorkflowStats,
    ExecutionRun,
    NodeState,
    RollupDay,
    WorkflowExecution,
)
from maestro_dagster.db.types import utcnow
from maestro_dagster.states import NodeStatus, WorkflowStatus

#: Upper bounds (seconds) of the duration histogram's buckets; a last bucket (``le_seconds`` NULL) is +Inf.
BUCKET_BOUNDS: tuple[float, ...] = (1, 5, 15, 30, 60, 300, 900, 1800, 3600, 10800, 21600, 86400)
_UNFINISHED = (WorkflowStatus.PENDING, WorkflowStatus.RUNNING, WorkflowStatus.PAUSED)
_KEYS: dict[Any, tuple[str, ...]] = {
    DailyWorkflowStats: ("workflow_id",),
    DailyNodeStats: ("workflow_id", "node_id"),
    DailyDurationBuckets: ("workflow_id", "bucket"),
}


@dataclass(frozen=True)
class RollupResult:
    """What rebuilding one day did: rows written per table, the raw executions they came from; ``kept`` when the
    day had been pruned and its rollups were left as they are."""

    day: date
    executions: int
    workflows: int
    nodes: int
    kept: bool = False


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """``[start, end)`` of a UTC day."""
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def _in_day(day: date) -> Any:
    start, end = day_bounds(day)
    return and_(WorkflowExecution.created_at >= start, WorkflowExecution.created_at < end)


def count_where(condition: Any) -> Any:
    """The number of the group's rows matching ``condition`` (0, never NULL, for an empty group)."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _workflow_rows(session: Session, day: date) -> list[dict[str, Any]]:
    e = WorkflowExecution
    duration = seconds_between(session, e.started_at, e.completed_at)
    done = and_(e.status == WorkflowStatus.COMPLETED, e.started_at.is_not(None), e.completed_at.is_not(None))
    executions = session.execute(
        select(
            e.workflow_id,
            func.count().label("executions"),
            count_where(e.status == WorkflowStatus.COMPLETED).label("completed"),
            count_where(e.status == WorkflowStatus.FAILED).label("failed"),
            count_where(e.status == WorkflowStatus.CANCELLED).label("cancelled"),
            count_where(e.status.in_(_UNFINISHED)).label("unfinished"),
            count_where(done).label("duration_count"),
            func.coalesce(func.sum(case((done, duration))), 0.0).label("duration_sum_seconds"),
            func.max(case((done, duration))).label("duration_max_seconds"),
            percentile(session, 0.5, duration, done).label("duration_p50_seconds"),
            percentile(session, 0.95, duration, done).label("duration_p95_seconds"),
        )
        .where(_in_day(day))
        .group_by(e.workflow_id)
    ).mappings()
    rows = {row["workflow_id"]: {"day": day, **row} for row in executions}
    n = NodeState
    nodes = session.execute(
        select(
            e.workflow_id,
            count_where(n.status == NodeStatus.COMPLETED).label("nodes_completed"),
            count_where(n.status == NodeStatus.FAILED).label("nodes_failed"),
            count_where(n.status == NodeStatus.SKIPPED).label("nodes_skipped"),
            count_where(n.status == NodeStatus.BLOCKED).label("nodes_blocked"),
            func.coalesce(func.sum(n.attempt_count), 0).label("node_attempts"),
            func.coalesce(func.sum(case((n.attempt_count > 1, n.attempt_count - 1), else_=0)), 0).label("node_retries"),
        )
        .select_from(n)
        .join(e, e.id == n.execution_id)
        .where(_in_day(day))
        .group_by(e.workflow_id)
    ).mappings()
    empty_nodes = dict.fromkeys(
        ("nodes_completed", "nodes_failed", "nodes_skipped", "nodes_blocked", "node_attempts", "node_retries"), 0
    )
    by_nodes = {row["workflow_id"]: dict(row) for row in nodes}
    runs = dict(
        session.execute(
            select(e.workflow_id, func.count())
            .select_from(ExecutionRun)
            .join(e, e.id == ExecutionRun.execution_id)
            .where(_in_day(day))
            .group_by(e.workflow_id)
        ).all()
    )
    for workflow_id, row in rows.items():
        row.update(empty_nodes)
        row.update({k: v for k, v in by_nodes.get(workflow_id, {}).items() if k != "workflow_id"})
        row["runs"] = runs.get(workflow_id, 0)
    return list(rows.values())


def node_select(where: Any) -> Select[Any]:
    """Per workflow and node, over the node states of the executions matching ``where``: the columns of
    ``daily_node_stats`` but ``day`` (the one definition of them: the rollups and ``maestro report nodes``)."""
    e, n = WorkflowExecution, NodeState
    return (
        select(
            e.workflow_id.label("workflow_id"),
            n.node_id.label("node_id"),
            func.count().label("node_states"),
            count_where(n.status == NodeStatus.COMPLETED).label("completed"),
            count_where(n.status == NodeStatus.FAILED).label("failed"),
            count_where(n.status == NodeStatus.SKIPPED).label("skipped"),
            count_where(n.status == NodeStatus.BLOCKED).label("blocked"),
            func.coalesce(func.sum(n.attempt_count), 0).label("attempts"),
            func.coalesce(func.sum(case((n.attempt_count > 1, n.attempt_count - 1), else_=0)), 0).label("retries"),
            func.count(n.duration_seconds).label("duration_count"),
            func.coalesce(func.sum(n.duration_seconds), 0.0).label("duration_sum_seconds"),
            func.count(n.quality_score).label("quality_count"),
            func.coalesce(func.sum(n.quality_score), 0.0).label("quality_sum"),
        )
        .select_from(n)
        .join(e, e.id == n.execution_id)
        .where(where)
        .group_by(e.workflow_id, n.node_id)
    )


def node_aggregates(session: Session, where: Any) -> list[dict[str, Any]]:
    """``node_select(where)``'s rows."""
    return [dict(row) for row in session.execute(node_select(where)).mappings()]


def bucket_aggregates(session: Session, where: Any) -> dict[str, list[int]]:
    """Per workflow, over the executions matching ``where``: the cumulative counts of completed executions with a
    duration <= each of ``BUCKET_BOUNDS``, then of all of them (+Inf)."""
    e = WorkflowExecution
    duration = seconds_between(session, e.started_at, e.completed_at)
    done = and_(e.status == WorkflowStatus.COMPLETED, e.started_at.is_not(None), e.completed_at.is_not(None))
    columns = [count_where(and_(done, duration <= bound)).label(f"b{i}") for i, bound in enumerate(BUCKET_BOUNDS)]
    columns.append(count_where(done).label(f"b{len(BUCKET_BOUNDS)}"))
    result = session.execute(select(e.workflow_id, *columns).where(where).group_by(e.workflow_id)).mappings()
    return {row["workflow_id"]: [row[f"b{i}"] for i in range(len(BUCKET_BOUNDS) + 1)] for row in result}


def _bucket_rows(session: Session, day: date) -> list[dict[str, Any]]:
    bounds: list[float | None] = [*BUCKET_BOUNDS, None]
    return [
        {"day": day, "workflow_id": workflow_id, "bucket": i, "le_seconds": le, "executions": count}
        for workflow_id, counts in bucket_aggregates(session, _in_day(day)).items()
        for i, (le, count) in enumerate(zip(bounds, counts, strict=True))
    ]


def compute_day(session: Session, day: date) -> dict[Any, list[dict[str, Any]]]:
    """The rollup rows of ``day`` as the raw tables hold them now, per rollup model."""
    return {
        DailyWorkflowStats: _workflow_rows(session, day),
        DailyNodeStats: [{"day": day, **row} for row in node_aggregates(session, _in_day(day))],
        DailyDurationBuckets: _bucket_rows(session, day),
    }


def day_state(session: Session, day: date) -> RollupDay | None:
    return session.get(RollupDay, day)


def is_pruned(state: RollupDay | None) -> bool:
    """True once retention has begun removing the day's raw rows: its rollups are then the record."""
    return state is not None and state.pruning_started_at is not None


def rebuild_day(session: Session, day: date) -> RollupResult:
    """Replace ``day``'s rollup rows with what the raw rows say (idempotent: twice gives the same rows) and record
    it in ``rollup_days`` (unchecked); a pruned day is kept as it is."""
    state = day_state(session, day)
    if is_pruned(state):
        return RollupResult(day, state.executions, 0, 0, kept=True)  # type: ignore[union-attr]
    computed = compute_day(session, day)
    for model, rows in computed.items():
        session.execute(delete(model).where(model.day == day))
        if rows:
            session.execute(model.__table__.insert(), rows)
    executions = sum(row["executions"] for row in computed[DailyWorkflowStats])
    fields = {"materialized_at": utcnow(), "executions": executions, "checked_at": None, "check_passed": None}
    upsert(session, RollupDay.__table__, [{"day": day, "removed_executions": 0, **fields}], update=tuple(fields))
    return RollupResult(day, executions, len(computed[DailyWorkflowStats]), len(computed[DailyNodeStats]))


def _stored(session: Session, model: Any, day: date) -> dict[tuple[Any, ...], dict[str, Any]]:
    keys = _KEYS[model]
    columns = [c for c in model.__table__.columns]
    rows = session.execute(select(*columns).where(model.day == day)).mappings()
    return {tuple(row[k] for k in keys): dict(row) for row in rows}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-6)
    return a == b


def differences(session: Session, day: date) -> list[str]:
    """Every difference between ``day``'s stored rollups and what its raw rows give now ([] when equal, and for a
    day without rollups that has no raw rows either). A pruned day has nothing to compare: []."""
    if is_pruned(day_state(session, day)):
        return []
    found: list[str] = []
    for model, rows in compute_day(session, day).items():
        table, keys = model.__tablename__, _KEYS[model]
        stored = _stored(session, model, day)
        for row in rows:
            key = tuple(row[k] for k in keys)
            have = stored.pop(key, None)
            if have is None:
                found.append(f"{table} {day} {key}: missing (the raw rows have it)")
                continue
            for column, value in row.items():
                if not _same(have.get(column), value):
                    found.append(f"{table} {day} {key}: {column} is {have.get(column)!r}, the raw rows give {value!r}")
        found.extend(f"{table} {day} {key}: no raw rows give it" for key in stored)
    return found


def record_check(session: Session, day: date, passed: bool) -> None:
    """Record the outcome of comparing ``day``'s rollups with its raw rows (``rollup_days.checked_at``)."""
    state = day_state(session, day)
    if state is None:
        state = RollupDay(day=day, executions=0, removed_executions=0)
        session.add(state)
    state.checked_at, state.check_passed = utcnow(), passed


def check_day(session: Session, day: date) -> list[str]:
    """Compare ``day``'s rollups with its raw rows and record the outcome; the differences ([] when it passed).
    A day never materialized fails (``rollup_days`` has no build for it)."""
    state = day_state(session, day)
    found = differences(session, day)
    if state is None or state.materialized_at is None:
        found = [f"{day}: the rollups were never materialized", *found]
    record_check(session, day, not found)
    return found


def day_ranges(days: Iterable[date]) -> list[tuple[datetime, datetime]]:
    """The UTC ``[start, end)`` ranges that cover ``days``, consecutive days merged into one range."""
    ranges: list[tuple[datetime, datetime]] = []
    for day in sorted(set(days)):
        start, end = day_bounds(day)
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], end)
        else:
            ranges.append((start, end))
    return ranges


def outside_days(days: Iterable[date]) -> Any:
    """A condition on ``workflow_executions.created_at``: the execution's day is not one of ``days`` (a few index
    ranges, as consecutive days are merged)."""
    ranges = day_ranges(days)
    if not ranges:
        return true()
    return not_(or_(*(and_(WorkflowExecution.created_at >= a, WorkflowExecution.created_at < b) for a, b in ranges)))


def materialized_days(session: Session) -> list[date]:
    """The days whose rollups have been built (``rollup_days.materialized_at``), pruned ones included."""
    return list(session.scalars(select(RollupDay.day).where(RollupDay.materialized_at.is_not(None))))
