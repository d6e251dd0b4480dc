"""``POST /api/workflows/{id}/backfill`` on the real stack (PostgreSQL, Dagster webserver + daemon, two API
processes): Dagster's own partition backfill (what the Dagster UI's "Launch backfill" sends) of 3 daily windows
with ``max_concurrent: 1``, run by the daemon. Each window is one mirrored execution with its partition columns,
completed, ``mirror verify`` clean; never more than one of its runs in progress at once. Bad requests get a 422
naming the fix and launch nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from _api_stack import ApiStack
from _defs import chain, definition, node
from _mirror_support import RunSampler
from _procs import wait_for
from dagster import RunsFilter
from sqlalchemy import select

from maestro_dagster.db.models import WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.instance import get_instance
from maestro_dagster.mirror.verify import verify_execution
from maestro_dagster.settings import get_settings
from maestro_dagster.tags import TAG_BACKFILL, TAG_WORKFLOW_ID

WORKFLOW = "api_backfilled"


def _partitioned(start: date) -> dict:
    nodes = {"load": node("sleep", config={"seconds": 2}), "after": node("echo")}
    schedule = {"name": "daily", "cron": "0 0 * * *", "partitioned": True, "start_date": start.isoformat()}
    return definition(WORKFLOW, nodes, chain(*nodes), schedules=[schedule])


def _executions() -> list[WorkflowExecution]:
    with get_db(get_settings()) as session:
        rows = list(session.scalars(select(WorkflowExecution).where(WorkflowExecution.workflow_id == WORKFLOW)))
        session.expunge_all()
        return rows


def test_a_backfill_of_three_windows_runs_one_at_a_time_through_the_daemon(api: ApiStack) -> None:
    today = datetime.now(UTC).date()
    first = today - timedelta(days=5)
    api.store_and_load(_partitioned(first))
    windows = [(first + timedelta(days=i)).isoformat() for i in (1, 2, 3)]
    instance = get_instance(get_settings())
    try:
        url, span = f"/api/workflows/{WORKFLOW}/backfill", {"from": windows[0], "to": windows[2]}
        with api.client("viewer") as viewer:  # a viewer may not backfill
            assert viewer.post(url, json=span).status_code == 403
        with api.client("operator") as operator:
            wrong = operator.post("/api/workflows/api_echo/backfill", json=span)
            assert wrong.status_code == 422 and "has no partitioned schedule" in wrong.json()["message"]
            empty = operator.post(url, json={"from": "2001-01-01", "to": "2001-01-02"})
            assert empty.status_code == 422 and "widen the range" in empty.json()["message"]
            extra = operator.post(url, json={**span, "max_concurrent": 0})
            assert extra.status_code == 422
            sampler = RunSampler(instance, {TAG_WORKFLOW_ID: WORKFLOW})
            response = operator.post(url, json={**span, "max_concurrent": 1})
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["partition_keys"] == windows and body["max_concurrent"] == 1
        assert body["backfill_id"].startswith(f"bf_{WORKFLOW}_") and body["dagster_backfill_id"]

        def all_completed() -> list[WorkflowExecution] | None:
            rows = _executions()
            done = [r for r in rows if r.status.value == "completed"]
            return rows if len(done) == 3 else None

        rows = wait_for(all_completed, 900, "the 3 windows' executions to complete", interval=1)
        most = sampler.stop()
        assert most == 1, f"{most} runs of the backfill were in progress at once"
        assert sorted(r.partition_key for r in rows) == windows
        for row in rows:
            start = datetime.fromisoformat(row.partition_start)
            assert start.date().isoformat() == row.partition_key
            assert datetime.fromisoformat(row.partition_end) - start == timedelta(days=1)
            assert row.initial_context["partition_key"] == row.partition_key
        runs = instance.get_runs(RunsFilter(tags={TAG_BACKFILL: body["backfill_id"]}))
        assert len(runs) == 3 and {run.tags["dagster/backfill"] for run in runs} == {body["dagster_backfill_id"]}
        with get_db(get_settings()) as session:
            for row in rows:
                assert verify_execution(session, instance, row.id) == [], row.id
    finally:
        instance.dispose()
