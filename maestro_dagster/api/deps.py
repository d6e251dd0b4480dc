"""FastAPI dependencies: settings, the Dagster gateway, the executions' transport, read sessions (``read``), and
role checks.

A role check (``viewer`` / ``operator`` / ``admin``) declares the role a route needs: ``routing.GuardedRoute``
reads it and authorizes before the body is parsed; the dependency then hands the endpoint that principal.

FastAPI runs a plain ``def`` dependency in a worker thread; the ones here that do no I/O are ``async`` so a
read costs one thread hop (the endpoint's), not five.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from maestro_dagster.api.auth import Principal, authorize_async
from maestro_dagster.api.routing import ROLE_ATTRIBUTE
from maestro_dagster.db.failures import as_database_error
from maestro_dagster.db.session import get_db
from maestro_dagster.executions.gateway import DagsterGateway, GatewayTransport
from maestro_dagster.settings import Settings

T = TypeVar("T")


async def settings_of(request: Request) -> Settings:
    return request.app.state.settings


async def gateway_of(request: Request) -> DagsterGateway:
    return request.app.state.gateway


async def transport_of(request: Request) -> GatewayTransport:
    """How the API's actions reach Dagster: GraphQL, and Dagster's instance (opened on first use, in a thread)."""
    return GatewayTransport(request.app.state.gateway, request.app.state.instance)


def _in_session(request: Request, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    with request.app.state.sessions() as session:
        return fn(session, *args)


def _read(request: Request, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    settings: Settings = request.app.state.settings
    try:
        try:
            return _in_session(request, fn, args)
        except OperationalError as exc:
            # A pooled connection found broken by this read (the server restarted): SQLAlchemy has discarded the
            # pool's connections; a read is safe to repeat once, on a new one.
            if not exc.connection_invalidated:
                raise
        return _in_session(request, fn, args)
    except OperationalError as exc:
        raise as_database_error(exc, settings) from exc


def in_transaction(settings: Settings, fn: Callable[..., T], *args: Any) -> T:
    """``fn(session, *args)`` in one write transaction (committed when ``fn`` returns): the mutating routes'
    storage work, in the thread FastAPI runs a plain ``def`` endpoint in."""
    with get_db(settings, immediate=True) as session:
        return fn(session, *args)


async def read(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """``fn(session, *args)`` in a worker thread, with a read-only session closed before it returns: one thread
    hop in all (a session dependency plus a plain ``def`` endpoint would take two). Every GET endpoint that reads
    the tables goes through here; ``fn`` builds the answer inside the session. A read that finds its pooled connection
    broken is repeated once on a new one; other database errors become ``DatabaseError``."""
    return await run_in_threadpool(_read, request, fn, args)


def role(required: str) -> Callable[..., Awaitable[Principal]]:
    async def check(request: Request, settings: Settings = Depends(settings_of)) -> Principal:
        principal = getattr(request.state, "principal", None)
        if principal is not None and principal.allows(required):
            return principal  # authorized by GuardedRoute before the body was read
        return await authorize_async(request, settings, required)

    setattr(check, ROLE_ATTRIBUTE, required)
    return check


viewer = role("viewer")
operator = role("operator")
admin = role("admin")
