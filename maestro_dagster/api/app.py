"""The FastAPI application (``maestro api``): routers, error mapping, body-size limit and the audit log.

Every mutating call (POST/PUT/DELETE) writes an ``audit_log`` row after it answers: who (token name),
which role, the action (method and route), the target (path parameters), the outcome and status code.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import lru_cache

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from maestro_dagster import __version__
from maestro_dagster.api import routes_executions, routes_system, routes_workflows, ws
from maestro_dagster.api.dagster_client import DagsterGateway
from maestro_dagster.api.errors import error_body, install_error_handlers
from maestro_dagster.db.models import AuditLog
from maestro_dagster.db.session import get_db
from maestro_dagster.settings import Settings, get_settings

log = logging.getLogger(__name__)
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}


def _audit(settings: Settings, request: Request, status_code: int) -> None:
    principal = getattr(request.state, "principal", None)
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


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.notifier.start()
        yield
        app.state.notifier.stop()
        if _instance.cache_info().currsize:
            _instance().dispose()

    @lru_cache(maxsize=1)
    def _instance():
        from maestro_dagster.instance import get_instance

        return get_instance(settings)

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
    install_error_handlers(app)

    @app.middleware("http")
    async def limits_and_audit(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.api_max_body_bytes:
            body = error_body("request_too_large", f"Request body over {settings.api_max_body_bytes} bytes.")
            response: Response = JSONResponse(body, status_code=413)
        else:
            response = await call_next(request)
        if request.method in MUTATING:
            await run_in_threadpool(_audit, settings, request, response.status_code)
        return response

    for module in (routes_system, routes_workflows, routes_executions, ws):
        app.include_router(module.router)
    return app
