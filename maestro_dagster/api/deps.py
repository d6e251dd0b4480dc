"""FastAPI dependencies: settings, the Dagster gateway and instance, sessions, and role checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from maestro_dagster.api.auth import Principal, authorize
from maestro_dagster.api.dagster_client import DagsterGateway
from maestro_dagster.db.session import get_db
from maestro_dagster.settings import Settings


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def gateway_of(request: Request) -> DagsterGateway:
    return request.app.state.gateway


def instance_of(request: Request) -> Any:
    return request.app.state.instance()


def session_dep(settings: Settings = Depends(settings_of)) -> Iterator[Session]:
    with get_db(settings) as session:
        yield session


def role(required: str) -> Callable[..., Principal]:
    def check(request: Request, settings: Settings = Depends(settings_of)) -> Principal:
        return authorize(request, settings, required)

    return check


viewer = role("viewer")
operator = role("operator")
admin = role("admin")
