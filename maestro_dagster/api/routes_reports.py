"""``/api/reports``: executions per UTC day and the nodes that fail most over the last ``days`` days (the web UI's
reports page), read through ``reporting.trends`` (the reporting rules of ``reporting.queries``: raw rows, the
rollups for days retention has pruned)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.orm import Session

from maestro_dagster.api.auth import Principal
from maestro_dagster.api.deps import read, viewer
from maestro_dagster.api.routing import GuardedRoute
from maestro_dagster.api.schemas import DailyReportRow, FailingNodeRow
from maestro_dagster.reporting import trends
from maestro_dagster.reporting.queries import Window

router = APIRouter(prefix="/api/reports", tags=["reports"], route_class=GuardedRoute)
MAX_DAYS = 366
DAYS = Query(30, ge=1, le=MAX_DAYS, description="The window: the last this many days, up to now")


def _daily(session: Session, window: Window) -> list[DailyReportRow]:
    return [
        DailyReportRow(
            day=r.day,
            executions=r.executions,
            completed=r.completed,
            failed=r.failed,
            success_rate=r.success_rate,
            p95_duration_seconds=r.p95_duration_seconds,
        )
        for r in trends.daily(session, window)
    ]


def _failing(session: Session, window: Window, limit: int) -> list[FailingNodeRow]:
    return [
        FailingNodeRow(workflow_id=r.workflow_id, node_id=r.node_id, failures=r.failures, runs=r.runs)
        for r in trends.failing_nodes(session, window, limit)
    ]


@router.get("/daily", response_model=list[DailyReportRow])
async def daily(
    request: Request, workflow_id: str | None = None, days: int = DAYS, _: Principal = Depends(viewer)
) -> list[DailyReportRow]:
    """One row per UTC day that has executions, oldest first: counts, success rate (percent of finished
    executions that completed) and the p95 duration of completed executions (exact on PostgreSQL; on SQLite from
    the daily duration buckets of rolled-up days, else null)."""
    return await read(request, _daily, Window.since(timedelta(days=days), workflow_id=workflow_id))


@router.get("/failing-nodes", response_model=list[FailingNodeRow])
async def failing_nodes(
    request: Request,
    workflow_id: str | None = None,
    days: int = DAYS,
    limit: int = Query(10, ge=1, le=1000),
    _: Principal = Depends(viewer),
) -> list[FailingNodeRow]:
    """The nodes with the most failed node states, most first: ``failures`` and ``runs`` (node states that
    finished, completed or failed)."""
    window = Window.since(timedelta(days=days), workflow_id=workflow_id)
    return await read(request, _failing, window, limit)
