"""The one error tree of maestro-dagster.

Every error the project raises on purpose is a ``MaestroError``. Each class carries the HTTP status
and the CLI exit code it maps to, in this one place, so the API and the CLI never decide on their own.
Exit codes: 1 for every failure, 2 for bad configuration (like a usage error).
Messages say what is wrong and how to fix it.
"""

from __future__ import annotations

from typing import Any


class MaestroError(Exception):
    """Base of every deliberate error. ``details`` is JSON-serialisable extra context."""

    http_status: int = 500
    exit_code: int = 1
    code: str = "maestro_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "details": self.details}


class ConfigError(MaestroError):
    """A setting (environment variable or file) has a value that cannot be used."""

    http_status = 500
    exit_code = 2
    code = "config_error"


class DatabaseError(MaestroError):
    """The database cannot be reached, or its schema is not at the expected revision."""

    http_status = 503
    exit_code = 1
    code = "database_unavailable"


class NotMigratedError(DatabaseError):
    code = "database_not_migrated"


class NotFoundError(MaestroError):
    http_status = 404
    exit_code = 1
    code = "not_found"


class ConflictError(MaestroError):
    """The request contradicts the current state (e.g. resuming a completed execution)."""

    http_status = 409
    exit_code = 1
    code = "conflict"


class ValidationError(MaestroError):
    """Input (a workflow definition, a run context) is invalid. ``details['errors']`` lists every problem."""

    http_status = 422
    exit_code = 1
    code = "validation_error"


class DefinitionError(ValidationError):
    """A workflow definition failed validation."""

    code = "invalid_definition"


class ExecutorError(MaestroError):
    """A node executor failed or returned something that is not a JSON-serialisable dict."""

    http_status = 500
    exit_code = 1
    code = "executor_error"


class NodeTimeoutError(ExecutorError):
    code = "node_timeout"


class ExecutorNotAllowedError(ExecutorError):
    """An executor the policy does not allow: outside the allowlist, or a built-in this origin may not use."""

    http_status = 422
    code = "executor_not_allowed"


class UnknownExecutorError(ExecutorError):
    """An executor reference that names nothing runnable (malformed, not importable, not callable)."""

    http_status = 422
    code = "unknown_executor"


class DagsterUnavailableError(MaestroError):
    http_status = 503
    exit_code = 1
    code = "dagster_unavailable"


class AuthError(MaestroError):
    http_status = 401
    exit_code = 1
    code = "unauthorized"


class ForbiddenError(AuthError):
    http_status = 403
    code = "forbidden"


class MigrationError(MaestroError):
    """A migration command that cannot be carried out as asked (an unknown revision, no valid target)."""

    http_status = 500
    exit_code = 1
    code = "migration_error"


class DataLossError(MaestroError):
    """An operation that would delete data (a downgrade dropping tables with rows) asked without confirmation."""

    http_status = 409
    exit_code = 1
    code = "would_lose_data"


DAGSTER_WRAPPERS = ("DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError", "RetryRequestedFromPolicy")


def user_error(error: Any) -> tuple[str | None, str | None]:
    """The user's error in a Dagster ``SerializableErrorInfo`` (the cause under Dagster's wrappers), as
    (``str(exc)``, class name): the mirror's ``error_message``/``error_type`` and what failure handlers are told.

    Dagster's message is ``traceback.format_exception_only`` (``"RuntimeError: b broke"``); the class name
    prefix is dropped, as the original recorded ``str(e)`` (a message-less exception keeps its class name).
    """
    if error is None:
        return None, None
    while getattr(error, "cause", None) is not None and error.cls_name in DAGSTER_WRAPPERS:
        error = error.cause
    text = (error.message or "").strip()
    head, sep, rest = text.partition(": ")
    if sep and error.cls_name and (head == error.cls_name or head.endswith("." + error.cls_name)):
        text = rest.strip() or text
    return text or None, error.cls_name
