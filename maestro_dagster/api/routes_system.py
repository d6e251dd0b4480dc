"""``/``, ``/health`` (+ live/ready), ``/api/me``, ``/api/executors`` and ``/metrics`` (Prometheus: the tables'
figures from ``reporting.metrics``).

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
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, SummaryMetricFamily
from sqlalchemy import select

from maestro_dagster import __version__
from maestro_dagster.api.auth import Principal
from maestro_dagster.api.deps import admin, gateway_of, settings_of, viewer
from maestro_dagster.api.routing import GuardedRoute
from maestro_dagster.api.schemas import ExecutorsResponse
from maestro_dagster.db.models import ExecutionRun
from maestro_dagster.db.session import bounded_pool, get_db, ping_within
from maestro_dagster.errors import MaestroError
from maestro_dagster.executions.gateway import DagsterGateway
from maestro_dagster.policy import BUILTIN_EXECUTORS, ORIGIN_API, DefinitionPolicy
from maestro_dagster.reporting.metrics import collect as table_metrics
from maestro_dagster.reporting.rollups import BUCKET_BOUNDS
from maestro_dagster.settings import Settings

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


@router.get("/api/me")
def me(principal: Principal = Depends(viewer), settings: Settings = Depends(settings_of)) -> dict[str, Any]:
    """Who the caller is: the token's name and role (what the UI shows and which buttons it draws; the server
    checks every call's role all the same); ``open`` in ``MAESTRO_API_OPEN`` mode; ``dagster_ui_url``, the Dagster
    UI a browser links to (``MAESTRO_DAGSTER_UI_URL``)."""
    return {
        "name": principal.name,
        "role": principal.role,
        "open": settings.api_open,
        "dagster_ui_url": settings.dagster_ui_url,
    }


@router.get("/api/executors", response_model=ExecutorsResponse)
def executors(settings: Settings = Depends(settings_of), _: Principal = Depends(admin)) -> ExecutorsResponse:
    """What a definition posted through the API may name as its executors (only admins edit definitions): the
    built-ins its policy allows, in ``BUILTIN_EXECUTORS`` order, and the import prefixes of the allowlist."""
    policy = DefinitionPolicy.for_origin(settings, ORIGIN_API).executors
    return ExecutorsResponse(
        builtin=[name for name in BUILTIN_EXECUTORS if policy.builtin_allowed(name)],
        import_prefixes=list(policy.allowed_prefixes),
    )


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
    """The families of ``/metrics`` built from ``reporting.metrics.collect`` (rollups plus the raw rows of days not
    rolled up: no whole-table scan per scrape) and the mirror lag."""

    def __init__(self, settings: Settings, lag: Any) -> None:
        self.settings, self.lag = settings, lag

    def collect(self):
        with get_db(self.settings) as session:
            figures = table_metrics(session)
        executions = GaugeMetricFamily(
            "maestro_executions", "Executions in the tables by workflow and status", labels=["workflow_id", "status"]
        )
        for (workflow_id, status), n in sorted(figures.executions.items()):
            executions.add_metric([workflow_id, status], n)
        durations = HistogramMetricFamily(
            "maestro_execution_duration_seconds", "Durations of completed executions", labels=["workflow_id"]
        )
        bounds = [*(f"{float(b)}" for b in BUCKET_BOUNDS), "+Inf"]
        for workflow_id, histogram in sorted(figures.durations.items()):
            durations.add_metric(
                [workflow_id], list(zip(bounds, histogram.buckets, strict=True)), sum_value=histogram.sum_seconds
            )
        labels = ["workflow_id", "node_id"]
        failures = CounterMetricFamily("maestro_node_failures", "Node states that ended failed", labels=labels)
        retries = CounterMetricFamily(
            "maestro_node_retries", "Node attempts beyond the first (retries and re-executions)", labels=labels
        )
        node_durations = SummaryMetricFamily(
            "maestro_node_duration_seconds", "Durations of node states that have one", labels=labels
        )
        for key, node in sorted(figures.nodes.items()):
            failures.add_metric(list(key), node.failures)
            retries.add_metric(list(key), node.retries)
            node_durations.add_metric(list(key), count_value=node.duration_count, sum_value=node.duration_sum_seconds)
        sla_missed = CounterMetricFamily(
            "maestro_sla_missed", "Missed SLAs (sla_missed rows) by workflow and scope", labels=["workflow_id", "scope"]
        )
        for key, n in sorted(figures.sla_missed.items()):
            sla_missed.add_metric(list(key), n)
        yield from (executions, durations, failures, retries, node_durations, sla_missed)
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
