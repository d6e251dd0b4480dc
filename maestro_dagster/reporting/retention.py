"""Retention: removing the raw rows of old UTC days, and their Dagster runs, once the day's rollups are the record.

Policy. A UTC day older than the horizon (``now - older_than``: the day ends at or before it) is pruned only when its
rollups are materialized and checked (``rollup_days.materialized_at`` set, ``check_passed`` true, ``checked_at >=
materialized_at``), a fresh ``rollups.differences`` finds them equal to the raw rows right before pruning begins,
and none of its executions is pending, running or paused. Any other day is refused, with the reason and the fix.
Pruning removes, per execution of the day: its Dagster runs (``delete_run`` of every ``execution_runs.run_id``), then
its ``execution_events``, ``artifacts``, ``node_approvals``, ``node_states``, ``execution_runs``, the
``execution_requests`` rows that launched it, and the ``workflow_executions`` row. ``rollup_days`` and the rollup
tables are kept: the reports over the day answer from them.

Crash safety, in this order:

1. ``rollup_days.pruning_started_at`` is set (committed) before anything is deleted: from then on
   ``rollups.rebuild_day`` keeps the day's rollups and ``differences`` has nothing to compare, and a rerun continues
   the day without judging it again (its raw rows are partly gone; its rollups were checked before pruning began).
2. Per batch of executions: their Dagster runs are deleted first, then their Maestro rows in one short transaction
   (a batch holds at most ``ROW_BUDGET`` events and node states; an execution with more events has them deleted in
   chunks of that size first, each its own transaction). Runs go first because the mirror's catch-up (its sensor,
   ``maestro mirror sync``) mirrors every Maestro run of Dagster's it does not find complete in ``execution_runs``:
   with the rows gone and the run still there, it would create the execution again from the event log. A crash
   between the two steps leaves rows whose runs are gone, which nothing re-creates and the rerun removes.
3. ``pruned_at`` is set when the day has no execution left; ``removed_executions`` counts them as batches commit.

Only terminal executions are removed from a day being pruned: one resumed meanwhile is kept (and reported) until a
later rerun finds it finished. Data functions take the caller's session and never commit; ``apply_retention`` is
the driver and owns its transactions through the ``scope`` it is given (``get_db(settings)`` in the CLI and job).
Dagster-free: Dagster's instance is any object with ``delete_run(run_id)`` (``RunDeleter``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, delete, exists, func, select, update
from sqlalchemy.orm import Session

from maestro_dagster.db.models import (
    Artifact,
    ExecutionEvent,
    ExecutionRequest,
    ExecutionRun,
    NodeApproval,
    NodeState,
    RollupDay,
    WorkflowExecution,
)
from maestro_dagster.db.outputs import delete_outputs_of_executions
from maestro_dagster.db.types import utcnow
from maestro_dagster.errors import MaestroError
from maestro_dagster.reporting.rollups import day_bounds, day_state, differences
from maestro_dagster.states import WorkflowStatus

#: Rows (events and node states) one deleting transaction removes at most: a few thousand rows keep SQLite's write
#: lock well under ~100 ms, so the mirror's writers are never stalled for long.
ROW_BUDGET = 2000
CANDIDATES = 200  # executions looked at to fill one batch
TERMINAL = (WorkflowStatus.COMPLETED, WorkflowStatus.FAILED, WorkflowStatus.CANCELLED)
UNFINISHED = (WorkflowStatus.PENDING, WorkflowStatus.RUNNING, WorkflowStatus.PAUSED)
Scope = Callable[[], AbstractContextManager[Session]]


class RunDeleter(Protocol):
    """What retention needs of Dagster's instance (``DagsterInstance`` is one)."""

    def delete_run(self, run_id: str) -> None: ...


class RetentionError(MaestroError):
    code = "retention_error"


@dataclass(frozen=True)
class Counts:
    """Raw rows of some executions; ``runs`` are their Dagster runs (``execution_runs`` rows)."""

    executions: int = 0
    node_states: int = 0
    events: int = 0
    artifacts: int = 0
    runs: int = 0
    approvals: int = 0
    requests: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


@dataclass(frozen=True)
class Verdict:
    """Whether a day may be pruned now. ``refused``: why not, ``fix``: what to do; ``resumed``: pruning began
    before (``pruning_started_at``) and is continued without judging the day again."""

    day: date
    refused: str | None = None
    fix: str | None = None
    resumed: bool = False


@dataclass(frozen=True)
class DayOutcome:
    """What retention did (or, in a dry run, would do) to one day. ``kept``: executions of a day being pruned left
    in place because they are not finished (the day is not ``finished`` then)."""

    day: date
    counts: Counts
    refused: str | None = None
    fix: str | None = None
    resumed: bool = False
    finished: bool = False
    kept: int = 0


@dataclass
class RetentionReport:
    horizon: datetime
    dry_run: bool
    days: list[DayOutcome] = field(default_factory=list)

    @property
    def total(self) -> Counts:
        return sum((d.counts for d in self.days if d.refused is None), Counts())

    @property
    def refused(self) -> list[DayOutcome]:
        return [d for d in self.days if d.refused is not None]

    @property
    def incomplete(self) -> list[DayOutcome]:
        """Days pruned but not completely (executions resumed while the day was being pruned); none in a dry run."""
        return [d for d in self.days if d.refused is None and d.kept and not self.dry_run]


def rebuild_fix(day: date) -> str:
    return f"`maestro rollups build --from {day} --to {day}` (rebuilds and checks the day), then retention again"


def first_kept_day(horizon: datetime) -> date:
    """The first UTC day retention keeps: every day before it ends at or before ``horizon``."""
    return horizon.date()


def _of_day(day: date) -> Any:
    start, end = day_bounds(day)
    return and_(WorkflowExecution.created_at >= start, WorkflowExecution.created_at < end)


def days_before(session: Session, before: date) -> list[date]:
    """The UTC days before ``before`` that hold executions (one indexed lookup per such day), and those whose pruning
    began and did not finish (``pruned_at`` NULL), in order."""
    found: set[date] = set(
        session.scalars(
            select(RollupDay.day).where(
                RollupDay.day < before, RollupDay.pruning_started_at.is_not(None), RollupDay.pruned_at.is_(None)
            )
        )
    )
    created = WorkflowExecution.created_at
    where: list[Any] = [created < day_bounds(before)[0]]
    while True:
        first: datetime | None = session.scalar(select(func.min(created)).where(*where))
        if first is None:
            return sorted(found)
        found.add(first.date())
        where = [created >= day_bounds(first.date())[1], where[-1]]


def _count(session: Session, model: Any, ids: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(model.execution_id.in_(ids))) or 0)


def count_rows(session: Session, ids: Any) -> Counts:
    """The raw rows of the executions ``ids`` (a list, or a SELECT of ids)."""
    return Counts(
        executions=int(session.scalar(select(func.count()).where(WorkflowExecution.id.in_(ids))) or 0),
        node_states=_count(session, NodeState, ids),
        events=_count(session, ExecutionEvent, ids),
        artifacts=_count(session, Artifact, ids),
        runs=_count(session, ExecutionRun, ids),
        approvals=_count(session, NodeApproval, ids),
        requests=_count(session, ExecutionRequest, ids),
    )


def count_day(session: Session, day: date, *, terminal_only: bool = False) -> Counts:
    where = [_of_day(day)] + ([WorkflowExecution.status.in_(TERMINAL)] if terminal_only else [])
    return count_rows(session, select(WorkflowExecution.id).where(*where).scalar_subquery())


def unfinished_count(session: Session, day: date) -> int:
    query = select(func.count()).where(_of_day(day), WorkflowExecution.status.in_(UNFINISHED))
    return int(session.scalar(query) or 0)


def judge_day(session: Session, day: date) -> Verdict:
    """May ``day`` be pruned now? Its rollups must be materialized, checked since, equal to the raw rows right now,
    and none of its executions unfinished; a day whose pruning began is continued."""
    state = day_state(session, day)
    if state is not None and state.pruning_started_at is not None:
        return Verdict(day, resumed=True)
    unfinished = unfinished_count(session, day)
    if unfinished:
        return Verdict(
            day,
            f"{unfinished} execution(s) still pending, running or paused",
            "let them finish or cancel them (`maestro mirror sync` fails runs whose worker died), then "
            + rebuild_fix(day),
        )
    if state is None or state.materialized_at is None:
        return Verdict(day, "its rollups were never materialized", rebuild_fix(day))
    if state.checked_at is None or state.checked_at < state.materialized_at:
        return Verdict(day, "its rollups were not checked since they were built", rebuild_fix(day))
    if not state.check_passed:
        return Verdict(day, "its rollups failed their last check", rebuild_fix(day))
    found = differences(session, day)
    if found:
        return Verdict(day, f"its rollups no longer match its raw rows ({len(found)}: {found[0]})", rebuild_fix(day))
    return Verdict(day)


def start_pruning(session: Session, day: date) -> None:
    """Record that ``day``'s raw rows are about to go (one statement: it takes SQLite's write lock first)."""
    session.execute(
        update(RollupDay)
        .where(RollupDay.day == day, RollupDay.pruning_started_at.is_(None))
        .values(pruning_started_at=utcnow())
    )


@dataclass(frozen=True)
class Batch:
    execution_ids: list[str]
    run_ids: list[str]
    events: int


def next_batch(session: Session, day: date, row_budget: int = ROW_BUDGET) -> Batch:
    """The next terminal executions of ``day`` whose events and node states fit ``row_budget`` (at least one)."""
    candidates = list(
        session.scalars(
            select(WorkflowExecution.id)
            .where(_of_day(day), WorkflowExecution.status.in_(TERMINAL))
            .order_by(WorkflowExecution.id)
            .limit(CANDIDATES)
        )
    )
    if not candidates:
        return Batch([], [], 0)
    rows: dict[str, int] = dict.fromkeys(candidates, 0)
    events: dict[str, int] = dict.fromkeys(candidates, 0)
    for model, target in ((ExecutionEvent, events), (NodeState, None)):
        grouped = session.execute(
            select(model.execution_id, func.count())
            .where(model.execution_id.in_(candidates))
            .group_by(model.execution_id)
        )
        for execution_id, n in grouped:
            rows[execution_id] += n
            if target is not None:
                target[execution_id] = n
    chosen: list[str] = []
    used = 0
    for execution_id in candidates:
        if chosen and used + rows[execution_id] > row_budget:
            break
        chosen.append(execution_id)
        used += rows[execution_id]
    run_ids = list(session.scalars(select(ExecutionRun.run_id).where(ExecutionRun.execution_id.in_(chosen))))
    return Batch(chosen, sorted(run_ids), sum(events[e] for e in chosen))


def delete_events_chunk(session: Session, execution_ids: Sequence[str], limit: int = ROW_BUDGET) -> int:
    """Delete at most ``limit`` events of these executions; how many went."""
    ids = select(ExecutionEvent.id).where(ExecutionEvent.execution_id.in_(execution_ids)).limit(limit)
    result = session.execute(delete(ExecutionEvent).where(ExecutionEvent.id.in_(ids.scalar_subquery())))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def delete_executions(session: Session, day: date, execution_ids: Sequence[str]) -> Counts:
    """Delete every Maestro row of these executions (children first, deletes only: the first statement takes
    SQLite's write lock, no read snapshot to go stale) and count them in ``rollup_days.removed_executions``."""

    def gone(model: Any, column: Any) -> int:
        return int(session.execute(delete(model).where(column.in_(execution_ids))).rowcount or 0)  # type: ignore[attr-defined]

    events = gone(ExecutionEvent, ExecutionEvent.execution_id)
    delete_outputs_of_executions(session, execution_ids)  # the runs' op outputs (before the runs' rows go)
    counts = Counts(
        events=events,
        artifacts=gone(Artifact, Artifact.execution_id),
        approvals=gone(NodeApproval, NodeApproval.execution_id),
        node_states=gone(NodeState, NodeState.execution_id),
        runs=gone(ExecutionRun, ExecutionRun.execution_id),
        requests=gone(ExecutionRequest, ExecutionRequest.execution_id),
        executions=gone(WorkflowExecution, WorkflowExecution.id),
    )
    session.execute(
        update(RollupDay)
        .where(RollupDay.day == day)
        .values(removed_executions=RollupDay.removed_executions + counts.executions)
    )
    return counts


def finish_day(session: Session, day: date) -> None:
    """Set ``pruned_at`` when no execution of ``day`` is left (one statement)."""
    left = exists(select(WorkflowExecution.id).where(_of_day(day)))
    session.execute(
        update(RollupDay).where(RollupDay.day == day, RollupDay.pruned_at.is_(None), ~left).values(pruned_at=utcnow())
    )


def _delete_runs(runs: RunDeleter, run_ids: Sequence[str]) -> None:
    for run_id in run_ids:
        try:
            runs.delete_run(run_id)
        except MaestroError:
            raise
        except Exception as exc:
            raise RetentionError(
                f"deleting Dagster run {run_id} failed ({type(exc).__name__}: {exc}); its execution's rows are "
                "untouched. Fix the cause and run `maestro retention apply` again: it continues where it stopped."
            ) from exc


def prune_day(
    scope: Scope,
    runs: RunDeleter,
    day: date,
    *,
    row_budget: int = ROW_BUDGET,
    after_batch: Callable[[date, Counts], None] | None = None,
) -> tuple[Counts, int, bool]:
    """Remove ``day``'s terminal executions batch by batch (``pruning_started_at`` must be set); the rows removed,
    the executions kept (unfinished), and whether the day is now pruned."""
    removed = Counts()
    while True:
        with scope() as session:
            batch = next_batch(session, day, row_budget)
        if not batch.execution_ids:
            break
        _delete_runs(runs, batch.run_ids)
        events = 0
        if batch.events > row_budget:
            while True:
                with scope() as session:
                    n = delete_events_chunk(session, batch.execution_ids, row_budget)
                events += n
                if n < row_budget:
                    break
        with scope() as session:
            removed += delete_executions(session, day, batch.execution_ids) + Counts(events=events)
        if after_batch is not None:
            after_batch(day, removed)
    with scope() as session:
        finish_day(session, day)
    with scope() as session:
        kept = int(session.scalar(select(func.count()).where(_of_day(day))) or 0)
        state = day_state(session, day)
        return removed, kept, state is not None and state.pruned_at is not None


def apply_retention(
    scope: Scope,
    runs: RunDeleter | None,
    older_than: timedelta,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    row_budget: int = ROW_BUDGET,
    after_batch: Callable[[date, Counts], None] | None = None,
    on_day: Callable[[DayOutcome], None] | None = None,
) -> RetentionReport:
    """Prune every eligible day before the horizon (see the module docstring), or in a ``dry_run`` say what would
    be removed and change nothing (``runs`` may then be None). ``on_day`` hears of each day as it is done."""
    if row_budget < 1:
        raise ValueError(f"row_budget must be at least 1, not {row_budget}")
    horizon = (now or utcnow()) - older_than
    report = RetentionReport(horizon, dry_run)
    with scope() as session:
        days = days_before(session, first_kept_day(horizon))
    for day in days:
        with scope() as session:
            verdict = judge_day(session, day)
            counts = count_day(session, day, terminal_only=verdict.resumed)
            kept = unfinished_count(session, day) if verdict.resumed else 0
        if verdict.refused is not None or dry_run:
            outcome = DayOutcome(day, counts, verdict.refused, verdict.fix, verdict.resumed, kept=kept)
        else:
            if runs is None:
                raise RetentionError("retention needs Dagster's instance to delete runs (only a dry run does not)")
            if not verdict.resumed:
                with scope() as session:
                    start_pruning(session, day)
            removed, kept, finished = prune_day(scope, runs, day, row_budget=row_budget, after_batch=after_batch)
            outcome = DayOutcome(day, removed, None, None, verdict.resumed, finished, kept)
        report.days.append(outcome)
        if on_day is not None:
            on_day(outcome)
    return report


def describe(counts: Counts) -> str:
    return (
        f"{counts.executions} execution(s), {counts.node_states} node state(s), {counts.events} event(s), "
        f"{counts.artifacts} artifact(s), {counts.runs} Dagster run(s)"
    )


def day_line(outcome: DayOutcome, *, dry_run: bool) -> str:
    """The line printed about one day."""
    if outcome.refused is not None:
        return f"{outcome.day}: refused: {outcome.refused}; fix: {outcome.fix}"
    line = f"{outcome.day}: {'would remove' if dry_run else 'removed'} {describe(outcome.counts)}"
    if outcome.resumed:
        line += " (continuing a pruning begun earlier)"
    if outcome.kept:
        line += f"; {outcome.kept} unfinished execution(s) kept: run retention again once they finish"
    return line


def total_line(report: RetentionReport) -> str:
    eligible = len(report.days) - len(report.refused)
    return (
        f"total: {'would remove' if report.dry_run else 'removed'} {describe(report.total)} over {eligible} day(s) "
        f"before {report.horizon:%Y-%m-%d %H:%M} UTC; {len(report.refused)} day(s) refused"
    )
