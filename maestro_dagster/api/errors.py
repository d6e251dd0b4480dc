"""The one place API errors become HTTP: ``{error, message, details}``, never a stack trace.

A database failure, whoever raised it, is the 503 of its ``DatabaseError`` (``database_unavailable`` or
``database_not_migrated``): the database (password masked), what is wrong, the fix; never the driver's text.
"""

from __future__ import annotations

import contextlib
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

from maestro_dagster.db.failures import database_error_of, driver_line
from maestro_dagster.errors import MaestroError

log = logging.getLogger(__name__)
_DRIVER_FAILURES: list[type[Exception]] = []
with contextlib.suppress(ImportError):
    from dagster_postgres.utils import DagsterPostgresException

    _DRIVER_FAILURES.append(DagsterPostgresException)
with contextlib.suppress(ImportError):
    import psycopg2

    _DRIVER_FAILURES.append(psycopg2.Error)


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": code, "message": message, "details": details or {}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MaestroError)
    async def maestro_error(_: Request, exc: MaestroError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()
        ]
        body = error_body(
            "validation_error",
            "The request is invalid: " + "; ".join(f"{e['location']}: {e['message']}" for e in errors),
            {"errors": errors},
        )
        return JSONResponse(body, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(
            exc.status_code, "http_error"
        )
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(ValueError)
    @app.exception_handler(SQLAlchemyError)
    async def value_error(request: Request, exc: Exception) -> JSONResponse:
        # Handled here (not by the catch-all below, which Starlette re-raises and which closes the connection).
        if "NUL (0x00)" in str(exc):  # PostgreSQL text cannot hold NUL; psycopg2 refuses it before sending
            body = error_body("validation_error", "Text in the request contains a NUL (0x00) character: remove it.")
            return JSONResponse(body, status_code=422)
        return _unexpected(request, exc)

    for database_failure in _DRIVER_FAILURES:  # answered here too, not by the catch-all (see above)
        app.add_exception_handler(database_failure, value_error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _unexpected(request, exc)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A database failure raised as a driver's exception (here or in Dagster's storage) is its 503 with the clean
    message (the driver's text goes to the server log); anything else is a 500 without details."""
    settings = request.app.state.settings
    database = database_error_of(exc, settings)
    if database is not None:
        log.warning("database failure answered 503 (%s): %s", type(exc).__name__, driver_line(exc, settings))
        return JSONResponse(database.to_dict(), status_code=database.http_status)
    log.exception("unhandled API error")
    return JSONResponse(error_body("internal_error", "Internal error; see the server log."), status_code=500)
