"""Retention's rules (``reporting.retention``) on the hand-made dataset, SQLite and PostgreSQL: which days are
refused and why, a dry run changes nothing, apply removes exactly the raw rows of a rolled-up and checked day (in
batches smaller than one execution's events) and keeps the rollups, and a run interrupted after a batch, or by a
failing Dagster deletion, is finished by the next. Dagster's side here is a recorder of ``delete_run`` calls (the
dataset's run ids are not Dagster's); ``test_retention_dagster.py`` deletes real runs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from _report_data import D1, D2
from sqlalchemy import func, select, update

from maestro_dagster.db.models import (
    DailyDurationBuckets,
    DailyNodeStats,
    DailyWorkflowStats,
    ExecutionEvent,
    ExecutionRequest,
    ExecutionRun,
    NodeApproval,
    NodeState,
    RollupDay,
    WorkflowExecution,
)
from maestro_dagster.reporting import retention, rollups
from maestro_dagster.states import NodeStatus, RequestStatus

NOW = datetime(2026, 10, 20, 12, tzinfo=UTC)
AGE = timedelta(days=7)  # horizon 2026-10-13 12:00: both days are older
RAW = (WorkflowExecution, NodeState, ExecutionEvent, ExecutionRun, NodeApproval, ExecutionRequest)
ROLLUPS = (DailyWorkflowStats, DailyNodeStats, DailyDurationBuckets)


class Deleted:
    """Records ``delete_run`` calls; ``fail_at`` makes that call (1-based) raise, as a failing Dagster storage."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.run_ids: list[str] = []
        self.calls, self.fail_at = 0, fail_at

    def delete_run(self, run_id: str) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            raise OSError("disk I/O error")
        self.run_ids.append(run_id)


def _counts(session) -> dict[str, int]:
    return {m.__tablename__: session.scalar(select(func.count()).select_from(m)) for m in RAW + ROLLUPS}


def _table(session, model) -> list[dict]:
    columns = list(model.__table__.columns)
    return [dict(r) for r in session.execute(select(*columns).order_by(*model.__table__.primary_key)).mappings()]


def _roll_up(session, day: date) -> None:
    rollups.rebuild_day(session, day)
    assert rollups.check_day(session, day) == []
    session.flush()  # seen by the scopes ``apply_retention`` opens


def _apply(fast_db, runs=None, **kwargs):
    return retention.apply_retention(fast_db.scope, runs or Deleted(), AGE, now=NOW, **kwargs)


def _with_request_and_approval(session) -> None:
    session.add(ExecutionRequest(workflow_id="alpha", status=RequestStatus.LAUNCHED, execution_id="e1"))
    session.add(ExecutionRequest(workflow_id="beta", status=RequestStatus.LAUNCHED, execution_id="e5"))
    session.add(NodeApproval(execution_id="e2", node_id="b", approved=False))
    session.flush()


def test_days_without_rollups_or_with_unfinished_executions_are_refused(report_data, fast_db):
    before = _counts(report_data)
    runs = Deleted()
    report = _apply(fast_db, runs)
    by_day = {d.day: d for d in report.days}
    assert set(by_day) == {D1, D2}
    assert by_day[D1].refused == "its rollups were never materialized"
    assert f"maestro rollups build --from {D1} --to {D1}" in by_day[D1].fix
    assert by_day[D2].refused == "1 execution(s) still pending, running or paused"
    assert "let them finish or cancel them" in by_day[D2].fix
    assert report.total == retention.Counts() and not report.incomplete
    assert _counts(report_data) == before and runs.run_ids == []
    assert retention.day_line(by_day[D1], dry_run=False).startswith(f"{D1}: refused: its rollups were never")


def test_only_days_that_end_before_the_horizon_are_considered(report_data, fast_db):
    _roll_up(report_data, D1)

    def days(now: datetime) -> list[date]:
        return [
            d.day for d in retention.apply_retention(fast_db.scope, None, timedelta(days=1), now=now, dry_run=True).days
        ]

    assert days(datetime(2026, 10, 3, 6, tzinfo=UTC)) == [D1]  # horizon 10-02 06:00: D2 ends after it
    assert days(datetime(2026, 10, 3, 0, tzinfo=UTC)) == [D1]  # D1 ends at the horizon, 10-02 00:00
    assert days(datetime(2026, 10, 2, 23, tzinfo=UTC)) == []
    assert days(datetime(2026, 10, 4, 0, tzinfo=UTC)) == [D1, D2]


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda s: rollups.rebuild_day(s, D1), "its rollups were not checked since they were built"),
        (lambda s: rollups.record_check(s, D1, False), "its rollups failed their last check"),
        (
            lambda s: s.execute(update(NodeState).where(NodeState.node_id == "b").values(status=NodeStatus.FAILED)),
            "its rollups no longer match its raw rows",
        ),
    ],
    ids=["unchecked", "failed-check", "raw-rows-changed"],
)
def test_a_day_whose_rollup_is_not_known_good_is_refused(report_data, fast_db, spoil, reason):
    _roll_up(report_data, D1)
    spoil(report_data)
    report_data.flush()
    before = _counts(report_data)
    (outcome,) = [d for d in _apply(fast_db).days if d.day == D1]
    assert outcome.refused.startswith(reason) and "maestro rollups build" in outcome.fix
    assert _counts(report_data) == before
    assert report_data.get(RollupDay, D1).pruning_started_at is None


def test_a_dry_run_says_what_would_go_and_changes_nothing(report_data, fast_db):
    _with_request_and_approval(report_data)
    _roll_up(report_data, D1)
    before, rolled = _counts(report_data), {m: _table(report_data, m) for m in (*ROLLUPS, RollupDay)}
    runs = Deleted()
    report = _apply(fast_db, runs, dry_run=True)
    (outcome,) = [d for d in report.days if d.refused is None]
    assert outcome.day == D1
    assert outcome.counts == retention.Counts(
        executions=3, node_states=6, events=2, artifacts=0, runs=4, approvals=1, requests=1
    )
    assert retention.day_line(outcome, dry_run=True) == (
        f"{D1}: would remove 3 execution(s), 6 node state(s), 2 event(s), 0 artifact(s), 4 Dagster run(s)"
    )
    assert "would remove 3 execution(s)" in retention.total_line(report) and "1 day(s) refused" in retention.total_line(
        report
    )
    assert _counts(report_data) == before and runs.run_ids == []
    assert {m: _table(report_data, m) for m in rolled} == rolled


def test_apply_removes_the_day_in_batches_and_keeps_its_rollups(report_data, fast_db):
    _with_request_and_approval(report_data)
    _roll_up(report_data, D1)
    rolled = {m: _table(report_data, m) for m in ROLLUPS}
    d2_before = {m: _count_of(report_data, m, ["e4", "e5"]) for m in (NodeState, ExecutionEvent, ExecutionRun)}
    for storage_id in range(10, 13):  # e3 gets 4 events: more than a batch may hold, deleted in chunks first
        report_data.add(ExecutionEvent(execution_id="e3", event_type="node_started", dagster_storage_id=storage_id))
    report_data.flush()
    runs, batches = Deleted(), []
    # a budget of 1 row: one execution per batch
    report = _apply(fast_db, runs, row_budget=1, after_batch=lambda day, removed: batches.append(removed.executions))
    (outcome,) = [d for d in report.days if d.day == D1]
    assert (outcome.refused, outcome.finished, outcome.kept, outcome.resumed) == (None, True, 0, False)
    assert outcome.counts == retention.Counts(
        executions=3, node_states=6, events=5, artifacts=0, runs=4, approvals=1, requests=1
    )
    assert batches == [1, 2, 3]
    assert sorted(runs.run_ids) == ["e1-run0", "e2-run0", "e3-run0", "e3-run1"]
    assert _count_of(report_data, WorkflowExecution, ["e1", "e2", "e3"], column="id") == 0
    for model in (NodeState, ExecutionEvent, ExecutionRun, NodeApproval, ExecutionRequest):
        assert _count_of(report_data, model, ["e1", "e2", "e3"]) == 0, model
    assert {m: _count_of(report_data, m, ["e4", "e5"]) for m in d2_before} == d2_before
    assert _count_of(report_data, ExecutionRequest, ["e5"]) == 1  # another day's request is kept
    assert {m: _table(report_data, m) for m in rolled} == rolled  # every report over D1 still answers the same
    state = report_data.get(RollupDay, D1)
    report_data.refresh(state)
    assert state.pruning_started_at is not None and state.pruned_at is not None and state.removed_executions == 3
    assert rollups.rebuild_day(report_data, D1).kept  # the rollups are the record now
    again = _apply(fast_db, Deleted())
    assert [d.day for d in again.days] == [D2]  # a pruned day is done


def _count_of(session, model, ids, column="execution_id") -> int:
    return session.scalar(select(func.count()).select_from(model).where(getattr(model, column).in_(ids)))


class Stop(Exception):
    pass


def test_a_run_stopped_after_a_batch_is_finished_by_the_next_without_judging_again(report_data, fast_db):
    _roll_up(report_data, D1)

    def stop(day, removed):
        raise Stop

    with pytest.raises(Stop):
        _apply(fast_db, row_budget=1, after_batch=stop)
    assert report_data.get(RollupDay, D1).pruning_started_at is not None
    left = set(report_data.scalars(select(WorkflowExecution.id).where(WorkflowExecution.id.in_(["e1", "e2", "e3"]))))
    assert left == {"e2", "e3"}  # e1 went whole; the others are whole
    assert _count_of(report_data, NodeState, ["e2", "e3"]) == 4 and _count_of(report_data, ExecutionRun, ["e3"]) == 2
    # the raw rows no longer give the rollups, and the next run does not mind: the day was checked before it began
    report = _apply(fast_db)
    (outcome,) = [d for d in report.days if d.day == D1]
    assert outcome.resumed and outcome.finished and outcome.counts.executions == 2
    assert retention.day_line(outcome, dry_run=False).endswith("(continuing a pruning begun earlier)")
    assert report_data.get(RollupDay, D1).removed_executions == 3


def test_a_failing_dagster_deletion_removes_no_row_of_its_execution_and_the_next_run_finishes(report_data, fast_db):
    _roll_up(report_data, D1)
    with pytest.raises(retention.RetentionError, match=r"deleting Dagster run e2-run0 failed .*disk I/O error"):
        _apply(fast_db, Deleted(fail_at=2), row_budget=1)
    assert _count_of(report_data, WorkflowExecution, ["e1", "e2", "e3"], column="id") == 2
    assert _count_of(report_data, NodeState, ["e2"]) == 2
    runs = Deleted()
    (outcome,) = [d for d in _apply(fast_db, runs).days if d.day == D1]
    assert outcome.finished and outcome.counts.executions == 2
    assert sorted(runs.run_ids) == ["e2-run0", "e3-run0", "e3-run1"]


def test_an_execution_resumed_while_its_day_is_pruned_is_kept(report_data, fast_db):
    _roll_up(report_data, D1)
    retention.start_pruning(report_data, D1)
    report_data.execute(update(WorkflowExecution).where(WorkflowExecution.id == "e2").values(status="running"))
    report_data.flush()
    report = _apply(fast_db)
    (outcome,) = [d for d in report.days if d.day == D1]
    assert (outcome.counts.executions, outcome.kept, outcome.finished) == (2, 1, False)
    assert report.incomplete == [outcome]
    assert "1 unfinished execution(s) kept" in retention.day_line(outcome, dry_run=False)
    assert report_data.get(RollupDay, D1).pruned_at is None


def test_a_dry_run_needs_no_dagster_and_apply_does(report_data, fast_db):
    _roll_up(report_data, D1)
    assert retention.apply_retention(fast_db.scope, None, AGE, now=NOW, dry_run=True).days
    with pytest.raises(retention.RetentionError, match="needs Dagster's instance"):
        retention.apply_retention(fast_db.scope, None, AGE, now=NOW)
    assert report_data.get(RollupDay, D1).pruning_started_at is None
    assert D2 in {d.day for d in retention.apply_retention(fast_db.scope, None, AGE, now=NOW, dry_run=True).days}
