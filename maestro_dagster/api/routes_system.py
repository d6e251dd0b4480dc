"""``/``, ``/health`` (+ live/ready) and ``/metrics`` (Prometheus, computed from the mirrored tables).

``/health`` always answers 200 within ``HEALTH_BUDGET_SECONDS`` (``degraded`` when the database, the Dagster
webserver or the mirror lag does not answer in time); ``/health/ready`` and ``/metrics`` answer 503 within it when
the database does not. The checks run in a small thread pool of their own: one that is late is left to finish
(each is bounded by a connect or request timeout) and reported, never waited for.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from maestro_dagster import __version__
from maestro_dagster.api.dagster_client import DagsterGateway
from maestro_dagster.api.deps import gateway_of, settings_of
from maestro_dagster.api.routing import GuardedRoute
from maestro_dagster.db.models import ExecutionEvent, ExecutionRun, NodeState, WorkflowExecution
from maestro_dagster.db.session import bounded_pool, get_db, ping_within
from maestro_dagster.errors import MaestroError
from maestro_dagster.settings import Settings
from maestro_dagster.states import EventType

router = APIRouter(tags=["system"], route_class=GuardedRoute)
log = logging.getLogger(__name__)
HEALTH_BUDGET_SECONDS = 1.5  # /health answers within this (plus the HTTP round trip); /metrics' 503 too


def _db_type(settings: Settings) -> str:
    return "PostgreSQL" if settings.backend == "postgresql" else "SQLite"


def mirror_lag_seconds(settings: Settings, instance: Any) -> float:
    """Oldest unmirrored Dagster event among runs not yet fully mirrored (0 when caught up)."""
    lag = 0.0
    with get_db(settings) as session:
        pending = session.execute(
            select(ExecutionRun.run_id, ExecutionRun.last_storage_id).where(ExecutionRun.mirror_complete.is_(False))
        ).all()
    now = datetime.now(UTC).timestamp()
    for run_id, cursor in pending:
        conn = instance.get_records_for_run(run_id, cursor=None, limit=1, ascending=False)
        if conn.records and conn.records[0].storage_id > cursor:
            lag = max(lag, now - conn.records[0].event_log_entry.timestamp)
    return round(lag, 3)


@router.get("/")
def root(settings: Settings = Depends(settings_of)) -> dict[str, Any]:
    return {
        "service": "Maestro DAG Workflow API (Dagster)",
        "version": __version__,
        "database": _db_type(settings),
        "docs": "/docs",
        "health": "/health",
    }


@router.get("/health")
def health(
    request: Request, settings: Settings = Depends(settings_of), gateway: DagsterGateway = Depends(gateway_of)
) -> dict[str, Any]:
    """Always 200, as the original server answered, within ``HEALTH_BUDGET_SECONDS`` whatever the database and
    Dagster do: the body says healthy or degraded. Probes that must fail on a broken dependency use
    /health/ready (503 when the database is unreachable)."""
    deadline = time.monotonic() + HEALTH_BUDGET_SECONDS
    body: dict[str, Any] = {
        "status": "healthy",
        "timestamp": datetime.now(UTC).isoformat(),
        "version": __version__,
        "database": "connected",
        "database_type": _db_type(settings),
        "database_url": settings.masked_database_url,
    }
    dagster = bounded_pool("maestro-health").submit(gateway.ping)
    try:
        ping_within(settings, HEALTH_BUDGET_SECONDS)
        database_up = True
    except MaestroError as exc:
        database_up = False
        body.update(status="degraded", database="disconnected", database_error=exc.message)
    reachable = bool(_within(dagster, deadline, "health: the Dagster webserver"))
    body["dagster"] = {"url": gateway.url, "reachable": reachable}
    if not reachable:
        body["status"] = "degraded"
    if not database_up:
        unread = "Not computed: the database is unreachable."
        body.update(mirror_lag_seconds=None, mirror_error=unread)
        return body
    lag = _within(bounded_pool("maestro-health").submit(_lag, request, settings), deadline, "health: the mirror lag")
    if lag is None:  # storage trouble shows as degraded, never as a 500; its text only in the server log
        unread = "Dagster's event storage could not be read in time; the API server's log has the error."
        body.update(status="degraded", mirror_lag_seconds=None, mirror_error=unread)
    else:
        body["mirror_lag_seconds"] = lag
    return body


def _lag(request: Request, settings: Settings) -> float:
    return mirror_lag_seconds(settings, request.app.state.instance())


def _within(future: Future, deadline: float, what: str) -> Any:
    """The future's result by ``deadline``; None (logged) when it failed or is late (it is then left to finish)."""
    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        future.cancel()
        log.warning("%s: no answer within the %.1f s budget of /health", what, HEALTH_BUDGET_SECONDS)
    except Exception as exc:
        log.warning("%s: %s", what, exc)
    return None


@router.get("/health/live")
def live() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/health/ready")
def ready(response: Response, settings: Settings = Depends(settings_of)) -> dict[str, str]:
    try:
        ping_within(settings, HEALTH_BUDGET_SECONDS)
    except MaestroError as exc:
        response.status_code = 503
        return {"status": "not_ready", "reason": exc.message}
    return {"status": "ready"}


class TablesCollector:
    def __init__(self, settings: Settings, lag: Any) -> None:
        self.settings, self.lag = settings, lag

    def collect(self):
        executions = GaugeMetricFamily(
            "maestro_executions", "Executions by workflow and status", labels=["workflow_id", "status"]
        )
        durations = GaugeMetricFamily(
            "maestro_node_duration_seconds_sum", "Sum of node durations", labels=["workflow_id", "node_id"]
        )
        counts = GaugeMetricFamily(
            "maestro_node_duration_seconds_count", "Nodes with a duration", labels=["workflow_id", "node_id"]
        )
        events = GaugeMetricFamily(
            "maestro_node_events", "Retries and failures of nodes", labels=["workflow_id", "event_type"]
        )
        with get_db(self.settings) as session:
            for wf, st, n in session.execute(
                select(WorkflowExecution.workflow_id, WorkflowExecution.status, func.count()).group_by(
                    WorkflowExecution.workflow_id, WorkflowExecution.status
                )
            ):
                executions.add_metric([wf, st.value], n)
            for wf, node, total, n in session.execute(
                select(
                    WorkflowExecution.workflow_id,
                    NodeState.node_id,
                    func.sum(NodeState.duration_seconds),
                    func.count(NodeState.duration_seconds),
                )
                .join(WorkflowExecution, WorkflowExecution.id == NodeState.execution_id)
                .where(NodeState.duration_seconds.is_not(None))
                .group_by(WorkflowExecution.workflow_id, NodeState.node_id)
            ):
                durations.add_metric([wf, node], float(total or 0))
                counts.add_metric([wf, node], n)
            for wf, et, n in session.execute(
                select(WorkflowExecution.workflow_id, ExecutionEvent.event_type, func.count())
                .join(WorkflowExecution, WorkflowExecution.id == ExecutionEvent.execution_id)
                .where(ExecutionEvent.event_type.in_([EventType.NODE_RETRY, EventType.NODE_FAILED]))
                .group_by(WorkflowExecution.workflow_id, ExecutionEvent.event_type)
            ):
                events.add_metric([wf, et.value], n)
        yield from (executions, durations, counts, events)
        value = self.lag()
        if value is not None:
            lag = GaugeMetricFamily("maestro_mirror_lag_seconds", "Age of the oldest Dagster event not yet mirrored")
            lag.add_metric([], value)
            yield lag


@router.get("/metrics")
def metrics(request: Request, settings: Settings = Depends(settings_of)) -> Response:
    """503 ``database_unavailable`` within ``HEALTH_BUDGET_SECONDS`` when the database does not answer; the mirror
    lag gauge is left out when it cannot be computed within that bound."""
    ping_within(settings, HEALTH_BUDGET_SECONDS)
    deadline = time.monotonic() + HEALTH_BUDGET_SECONDS
    lag = bounded_pool("maestro-health").submit(_lag, request, settings)
    registry = CollectorRegistry()
    registry.register(TablesCollector(settings, lambda: _within(lag, deadline, "metrics: the mirror lag")))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
