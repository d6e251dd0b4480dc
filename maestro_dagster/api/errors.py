"""The one place API errors become HTTP: ``{error, message, details}``, never a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import StatementError
from starlette.exceptions import HTTPException

from maestro_dagster.errors import MaestroError

log = logging.getLogger(__name__)


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
    @app.exception_handler(StatementError)
    async def value_error(_: Request, exc: Exception) -> JSONResponse:
        # Handled here (not by the catch-all below, which Starlette re-raises and which closes the connection).
        if "NUL (0x00)" in str(exc):  # PostgreSQL text cannot hold NUL; psycopg2 refuses it before sending
            body = error_body("validation_error", "Text in the request contains a NUL (0x00) character: remove it.")
            return JSONResponse(body, status_code=422)
        log.exception("unhandled API error")
        return JSONResponse(error_body("internal_error", "Internal error; see the server log."), status_code=500)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled API error")
        return JSONResponse(error_body("internal_error", "Internal error; see the server log."), status_code=500)
