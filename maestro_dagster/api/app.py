"""The FastAPI application (``maestro api``): routers, error mapping, body-size limit, the audit log, and token
redaction in uvicorn's logs (``redact``).

Every mutating call (POST/PUT/DELETE) writes an ``audit_log`` row as it answers: who (token name),
which role, the action (method and route), the target (path parameters), the outcome and status code. The
routes authorize before they read the body (``routing.GuardedRoute``); a call answered before any route
authorized it (an unknown path, a wrong method) is audited under the name of its token all the same.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maestro_dagster import __version__
from maestro_dagster.api import redact, routes_executions, routes_reports, routes_system, routes_workflows, ui, ws
from maestro_dagster.api.auth import bearer, principal_for
from maestro_dagster.api.errors import install_error_handlers
from maestro_dagster.db.models import AuditLog
from maestro_dagster.db.session import get_db, ping_within, read_session_factory
from maestro_dagster.executions.gateway import DagsterGateway
from maestro_dagster.settings import Settings, get_settings

log = logging.getLogger(__name__)
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
INSTANCE_PROBE_SECONDS = 2.0  # the database check before Dagster's instance is first opened


def _audit(settings: Settings, request: Request, status_code: int) -> None:
    principal = getattr(request.state, "principal", None)
    if principal is None and bearer(request):
        try:  # answered before a route authorized it: the row names the caller all the same
            principal = principal_for(bearer(request), settings)
        except Exception as exc:
            log.error("could not look up the caller's token for the audit log: %s", exc)
    route = request.scope.get("route")
    outcome = "ok" if status_code < 400 else ("denied" if status_code in (401, 403) else "error")
    target = "/".join(str(v) for v in request.path_params.values()) or None
    try:
        with get_db(settings) as session:
            session.add(
                AuditLog(
                    actor=principal.name if principal else "anonymous",
                    role=principal.role if principal else None,
                    action=f"{request.method} {getattr(route, 'path', request.url.path)}",
                    target=target,
                    outcome=outcome,
                    status_code=status_code,
                    details={"client": request.client.host if request.client else None},
                )
            )
    except Exception as exc:  # the audit write must not turn an answered call into a failure
        log.error("could not write the audit log: %s", exc)


class LimitsAndAudit:
    """Body-size limit and audit log, as a plain ASGI middleware (``@app.middleware`` would add a task group and
    memory streams to every request, reads included).

    A body over ``MAESTRO_API_MAX_BODY_BYTES`` gets 413: at once when its Content-Length says so (checked by the
    route once it has authorized the caller: ``routing.check_announced_length``), else as soon as the bytes read
    exceed it (a streamed body has no Content-Length; the 413 is raised inside the app, so it goes through the
    error handlers). A mutating call writes its ``audit_log`` row as it is answered."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings, self.limit = app, settings, settings.api_max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        mutating = scope["method"] in MUTATING
        audited = False
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, f"Request body over {self.limit} bytes.")
            return message

        async def audit(status: int) -> None:
            nonlocal audited
            if mutating and not audited:
                audited = True
                await run_in_threadpool(_audit, self.settings, Request(scope), status)

        async def send_audited(message: Message) -> None:
            if message["type"] == "http.response.start":
                await audit(message["status"])  # the row is written before the caller sees the answer
            await send(message)

        try:
            await self.app(scope, limited_receive, send_audited)
        except Exception:
            await audit(500)  # answered 500 by the outermost error middleware
            raise


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    redact.install()  # before the server logs its first request path

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.notifier.start()
        yield
        app.state.notifier.stop()
        if opened:
            opened[0].dispose()

    opened: list[Any] = []  # Dagster's instance, once opened
    opening = threading.Lock()

    def _instance() -> Any:
        """Dagster's instance, opened on first use, after a bounded check of the database: opening it on a dead
        PostgreSQL server retries for seconds, where a 503 ``database_unavailable`` now answers at once."""
        if not opened:
            with opening:
                if not opened:
                    from maestro_dagster.instance import get_instance

                    ping_within(settings, INSTANCE_PROBE_SECONDS)
                    opened.append(get_instance(settings))
        return opened[0]

    app = FastAPI(
        title="Maestro DAG Workflow API (Dagster)",
        version=__version__,
        description="Maestro workflows run by Dagster; executions read from the mirrored SQL tables.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.gateway = DagsterGateway(settings.dagster_url)
    app.state.instance = _instance
    app.state.notifier = ws.Notifier(settings)
    app.state.sessions = read_session_factory(settings)  # for read-only endpoints (deps.read)
    install_error_handlers(app)
    app.add_middleware(LimitsAndAudit, settings=settings)

    for module in (routes_system, routes_workflows, routes_executions, routes_reports, ws, ui):
        app.include_router(module.router)
    return app
