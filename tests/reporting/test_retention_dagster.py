"""Retention over real mirrored executions and a real Dagster instance (SQLite and PostgreSQL), through
``maestro retention apply``: a dry run changes no row and no Dagster run; apply removes the raw rows and the Dagster
runs of a rolled-up, checked day, keeps every other day's rows and the rollups (the reports' answers), and the
mirror's catch-up re-creates nothing; a process SIGKILLed after its first batch leaves every execution whole or gone,
and a rerun finishes the day. Executions are made old by moving their ``created_at`` to a past day."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta

from _defs import etl
from sqlalchemy import func, update
from sqlalchemy import select as sql_select
from typer.testing import CliRunner

from maestro_dagster.cli import app
from maestro_dagster.db.models import (
    Artifact,
    DailyDurationBuckets,
    DailyNodeStats,
    DailyWorkflowStats,
    ExecutionEvent,
    ExecutionRun,
    NodeState,
    RollupDay,
    WorkflowExecution,
)
from maestro_dagster.db.session import get_db
from maestro_dagster.mirror import sync_runs
from maestro_dagster.reporting import retention, rollups

TODAY = datetime.now(UTC).date()
OLD, OLDER = TODAY - timedelta(days=200), TODAY - timedelta(days=300)
CHILDREN = (NodeState, ExecutionEvent, ExecutionRun, Artifact)
ROLLUPS = (DailyWorkflowStats, DailyNodeStats, DailyDurationBuckets)
KILLABLE = """
import sys, time
from datetime import timedelta
from maestro_dagster.db.session import get_db
from maestro_dagster.instance import get_instance
from maestro_dagster.reporting.retention import apply_retention
from maestro_dagster.settings import get_settings

settings = get_settings()
instance = get_instance(settings)

def pause(day, removed):
    print("BATCH", removed.executions, flush=True)
    time.sleep(600)

apply_retention(lambda: get_db(settings), instance, timedelta(days=90), row_budget=int(sys.argv[1]), after_batch=pause)
"""


def _run_executions(env, count: int) -> list[str]:
    env.add_definition(etl("kept", env.settings.artifacts_dir / "report.txt"))
    ids = []
    for i in range(count):
        result = env.run("kept", {"i": i})
        assert result.success, result
        ids.append(result.execution_id)
    return ids


def _move(settings, ids: list[str], day: date) -> None:
    start = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
    with get_db(settings) as session:
        session.execute(update(WorkflowExecution).where(WorkflowExecution.id.in_(ids)).values(created_at=start))


def _roll_up(settings, day: date) -> None:
    with get_db(settings) as session:
        rollups.rebuild_day(session, day)
    with get_db(settings) as session:
        assert rollups.check_day(session, day) == []


def _rows_of(settings, ids: list[str]) -> dict[str, tuple[int, ...]]:
    """Per execution that exists: its rows in each child table."""
    with get_db(settings) as session:
        present = set(session.scalars(sql_select(WorkflowExecution.id).where(WorkflowExecution.id.in_(ids))))
        out = {}
        for execution_id in present:
            out[execution_id] = tuple(
                session.scalar(sql_select(func.count()).select_from(m).where(m.execution_id == execution_id))
                for m in CHILDREN
            )
        return out


def _children_of(settings, ids: list[str]) -> int:
    with get_db(settings) as session:
        return sum(
            session.scalar(sql_select(func.count()).select_from(m).where(m.execution_id.in_(ids))) for m in CHILDREN
        )


def _table(settings, model) -> list[dict]:
    with get_db(settings) as session:
        columns = list(model.__table__.columns)
        result = session.execute(sql_select(*columns).order_by(*model.__table__.primary_key)).mappings()
        return [dict(r) for r in result]


def _run_ids(settings, ids: list[str]) -> list[str]:
    with get_db(settings) as session:
        return list(session.scalars(sql_select(ExecutionRun.run_id).where(ExecutionRun.execution_id.in_(ids))))


def _dagster_runs(instance) -> set[str]:
    return {run.run_id for run in instance.get_runs()}


def _cli(*args: str):
    return CliRunner().invoke(app, ["retention", "apply", *args])


def test_dry_run_then_apply_remove_exactly_the_checked_day(maestro_env):
    settings, instance = maestro_env.settings, maestro_env.instance
    old, older, today = (lambda ids: (ids[:2], ids[2:3], ids[3:]))(_run_executions(maestro_env, 4))
    _move(settings, old, OLD)
    _move(settings, older, OLDER)  # never rolled up: refused
    _roll_up(settings, OLD)
    old_runs = _run_ids(settings, old)
    assert len(old_runs) == 2 and set(old_runs) <= _dagster_runs(instance)
    kept_rows = _rows_of(settings, older + today)
    assert all(rows[3] == 1 for rows in kept_rows.values())  # each has its artifact
    rolled = {m: _table(settings, m) for m in ROLLUPS}
    every_row = {m: _table(settings, m) for m in (*ROLLUPS, RollupDay, WorkflowExecution, *CHILDREN)}
    runs_before = _dagster_runs(instance)

    dry = _cli("--older-than", "90d", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"{OLD}: would remove 2 execution(s), " in dry.output and "2 Dagster run(s)" in dry.output
    assert f"{OLDER}: refused: its rollups were never materialized; fix: `maestro rollups build" in dry.output
    assert "total: would remove 2 execution(s)" in dry.output
    assert {m: _table(settings, m) for m in every_row} == every_row  # no row of any table changed
    assert _dagster_runs(instance) == runs_before

    done = _cli("--older-than", "90d")
    assert done.exit_code == 0, done.output
    assert f"{OLD}: removed 2 execution(s), " in done.output and "1 day(s) refused" in done.output
    assert "warning: 1 day(s) refused" in done.output
    assert _rows_of(settings, old) == {} and _children_of(settings, old) == 0
    assert not set(old_runs) & _dagster_runs(instance)
    assert all(instance.get_run_by_id(run_id) is None for run_id in old_runs)
    assert _dagster_runs(instance) == runs_before - set(old_runs)
    assert _rows_of(settings, older + today) == kept_rows
    assert {m: _table(settings, m) for m in ROLLUPS} == rolled  # the reports over OLD answer as before
    (state,) = [r for r in _table(settings, RollupDay) if r["day"] == OLD]
    assert state["pruned_at"] is not None and state["removed_executions"] == 2

    report = sync_runs(instance, settings=settings)  # the mirror's catch-up finds nothing to re-create
    assert not report.unmirrored
    assert _rows_of(settings, old) == {}

    strict = _cli("--older-than", "90d", "--strict")
    assert strict.exit_code == 1 and f"{OLDER}: refused" in strict.output
    assert _cli("--older-than", "ninety").exit_code == 2


def test_rows_removed_before_their_dagster_runs_would_be_mirrored_again(maestro_env):
    """Why retention deletes Dagster runs first: the catch-up re-creates an execution whose run is still there."""
    settings = maestro_env.settings
    (execution_id,) = _run_executions(maestro_env, 1)
    rows = _rows_of(settings, [execution_id])
    with get_db(settings) as session:
        retention.delete_executions(session, TODAY, [execution_id])
    assert _rows_of(settings, [execution_id]) == {}
    sync_runs(maestro_env.instance, settings=settings)
    again = _rows_of(settings, [execution_id])
    assert set(again) == {execution_id} and again[execution_id][0] == rows[execution_id][0]


def _wait_for_line(proc: subprocess.Popen, prefix: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            if line.startswith(prefix):
                return line
            if not line and proc.poll() is not None:
                break
    proc.kill()
    raise AssertionError(f"no {prefix!r} line within {timeout}s: {proc.stderr.read()[-3000:]}")


def test_killed_after_a_batch_leaves_nothing_half_deleted_and_a_rerun_finishes(maestro_env):
    settings, instance = maestro_env.settings, maestro_env.instance
    ids = _run_executions(maestro_env, 4)
    _move(settings, ids, OLD)
    _roll_up(settings, OLD)
    rows = _rows_of(settings, ids)
    budget = max(r[0] + r[1] for r in rows.values())  # events + node states of one execution: one per batch
    run_ids = _run_ids(settings, ids)
    rolled = {m: _table(settings, m) for m in ROLLUPS}

    proc = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, str(budget)],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _wait_for_line(proc, "BATCH", timeout=180).split() == ["BATCH", "1"]
    finally:
        proc.kill()  # SIGKILL: no cleanup of any kind
        proc.wait(timeout=60)

    (state,) = [r for r in _table(settings, RollupDay) if r["day"] == OLD]
    assert state["pruning_started_at"] is not None and state["pruned_at"] is None
    left = _rows_of(settings, ids)
    assert len(left) == 3 and all(left[e] == rows[e] for e in left)  # every remaining execution whole
    (gone,) = set(ids) - set(left)
    assert _children_of(settings, [gone]) == 0
    assert set(_run_ids(settings, list(left))) <= _dagster_runs(instance)
    assert not set(run_ids) - set(_run_ids(settings, list(left))) & _dagster_runs(instance)
    sync_runs(instance, settings=settings)
    assert _rows_of(settings, ids) == left  # nothing re-created by the mirror

    again = _cli("--older-than", "90d")
    assert again.exit_code == 0, again.output
    assert f"{OLD}: removed 3 execution(s)" in again.output and "continuing a pruning begun earlier" in again.output
    assert _rows_of(settings, ids) == {} and _children_of(settings, ids) == 0
    assert not set(run_ids) & _dagster_runs(instance)
    (state,) = [r for r in _table(settings, RollupDay) if r["day"] == OLD]
    assert state["pruned_at"] is not None and state["removed_executions"] == 4
    assert {m: _table(settings, m) for m in ROLLUPS} == rolled


def test_the_job_prunes_and_its_schedule_exists_only_when_configured(maestro_env, monkeypatch):
    from dagster import DefaultScheduleStatus, build_schedule_context

    from maestro_dagster.assets import retention as retention_assets
    from maestro_dagster.settings import get_settings

    settings, instance = maestro_env.settings, maestro_env.instance
    ids = _run_executions(maestro_env, 2)
    _move(settings, ids, OLD)
    _roll_up(settings, OLD)
    run_ids = _run_ids(settings, ids)

    assert retention_assets.retention_definitions()[1] == []  # MAESTRO_RETENTION_DAYS unset: never by itself
    unset = retention_assets.retention_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not unset.success and len(_rows_of(settings, ids)) == 2  # no horizon: nothing deleted

    monkeypatch.setenv("MAESTRO_RETENTION_DAYS", "90")
    get_settings.cache_clear()
    (job,), (schedule,) = retention_assets.retention_definitions()
    assert (schedule.name, schedule.cron_schedule, schedule.job.name) == (
        "maestro_retention_schedule",
        "30 3 * * *",
        job.name,
    )
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    with build_schedule_context(instance=instance) as context:
        (request,) = schedule.evaluate_tick(context).run_requests
    result = job.execute_in_process(instance=instance, run_config=request.run_config)
    assert result.success
    assert _rows_of(settings, ids) == {} and not set(run_ids) & _dagster_runs(instance)
    messages = [e.message for e in instance.all_logs(result.run_id) if e.user_message]
    assert any(m.startswith(f"{OLD}: removed 2 execution(s)") for m in messages), messages
