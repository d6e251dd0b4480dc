"""The ``sql`` built-in executor: one SQL statement on a named connection.

Config (``node_config``):
- ``connection``: a name from the setting ``MAESTRO_SQL_CONNECTIONS`` (a JSON object name -> database URL).
  Only connections an operator named there are reachable: there is no implicit one (``maestro`` used to name
  Maestro's own database, with its tokens, audit log and every execution; a definition is untrusted input). To
  query Maestro's tables, name a connection for them, ideally with a read-only database user. On PostgreSQL,
  Maestro's tables live in the schema ``MAESTRO_DB_SCHEMA``: qualify them (``maestro.workflow_executions``).
- ``statement``: run with SQLAlchemy ``text()``; ``parameters`` (a mapping) are bound as ``:name``
  parameters, never interpolated into the SQL.
- ``max_rows`` (default 1000): row cap for statements returning rows.

Output: statements returning rows give ``{rows: [{column: value}], row_count, columns, truncated}``
(``truncated`` is true when more than ``max_rows`` rows existed; values that JSON cannot hold become
strings, Decimals numbers, bytes hex); other statements give ``{row_count}``. Every statement runs in its own
transaction, committed on success (so ``INSERT ... RETURNING`` is kept too).

Engines are cached per URL (``pool_pre_ping=True``); PostgreSQL URLs use the psycopg2 driver. The node's
timeout is enforced by ``invoke``'s watchdog: the statement itself is not cancelled on the server.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from maestro_dagster.errors import ConfigError, ExecutorError
from maestro_dagster.executors.base import ExecutorContext, NodeInput, NodeOutput, node_config
from maestro_dagster.settings import Settings, mask_url, normalise_url

CONNECTIONS_SETTING = "MAESTRO_SQL_CONNECTIONS"
DEFAULT_MAX_ROWS = 1000

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def sql_executor(node_input: NodeInput, ctx: ExecutorContext) -> NodeOutput:
    """Run the configured statement; see the module docstring for the config keys."""
    config = node_config(node_input)
    node_id = ctx.node_id
    name = config.get("connection")
    if not isinstance(name, str) or not name:
        raise _config_error(node_id, f"connection is required: one of {known_connections(ctx.settings)}")
    statement = config.get("statement")
    if not isinstance(statement, str) or not statement.strip():
        raise _config_error(node_id, "statement is required (SQL text with :name parameters)")
    parameters = config.get("parameters") or {}
    if not isinstance(parameters, Mapping):
        raise _config_error(node_id, "parameters must be a mapping of name -> value, bound as :name")
    max_rows = config.get("max_rows", DEFAULT_MAX_ROWS)
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise _config_error(node_id, f"max_rows must be a positive integer, got {max_rows!r}")

    url = connection_url(name, ctx.settings, node_id)
    try:
        engine = get_engine(url, ctx.settings)
    except (SQLAlchemyError, ImportError) as exc:
        raise ExecutorError(
            f"Node '{node_id}': cannot create an engine for connection {name!r} ({mask_url(url)}): {exc}",
            details={"node_id": node_id, "connection": name},
        ) from exc
    ctx.log.info("node %s: SQL on connection %r (%s)", node_id, name, mask_url(url))
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), dict(parameters))
            if result.returns_rows:
                columns = list(map(str, result.keys()))
                fetched = result.mappings().fetchmany(max_rows + 1)
                truncated = len(fetched) > max_rows
                rows = [{str(k): _jsonable(v) for k, v in row.items()} for row in fetched[:max_rows]]
                result.close()
                return {"rows": rows, "row_count": len(rows), "columns": columns, "truncated": truncated}
            return {"row_count": result.rowcount}
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        raise ExecutorError(
            f"Node '{node_id}': SQL statement failed on connection {name!r}: {type(cause).__name__}: {cause}",
            details={"node_id": node_id, "connection": name},
        ) from exc


def known_connections(settings: Settings) -> list[str]:
    return sorted(settings.sql_connections)


def connection_url(name: str, settings: Settings, node_id: str = "?") -> URL:
    """The URL of a named connection (``ExecutorError`` listing the known names if it is unknown)."""
    connections = settings.sql_connections
    if name in connections:
        raw = connections[name]
        try:
            url = make_url(raw)
        except ArgumentError as exc:
            raise ConfigError(
                f"{CONNECTIONS_SETTING}: connection {name!r} is not a database URL ({exc}).",
                details={"variable": CONNECTIONS_SETTING, "connection": name},
            ) from exc
        if url.get_backend_name() == "postgresql":
            url = normalise_url(raw, CONNECTIONS_SETTING)
        return url
    raise ExecutorError(
        f"Node '{node_id}': unknown SQL connection {name!r}. Known connections: "
        f"{', '.join(known_connections(settings)) or '(none)'}. Define more in the setting {CONNECTIONS_SETTING} "
        '(a JSON object of name -> URL, e.g. {"reports": "sqlite:////data/reports.db"}).',
        details={"node_id": node_id, "connection": name, "known": known_connections(settings)},
    )


def get_engine(url: URL, settings: Settings | None = None) -> Engine:
    """A cached engine for ``url`` (SQLite files get the busy timeout of ``MAESTRO_SQLITE_BUSY_TIMEOUT``)."""
    key = url.render_as_string(hide_password=False)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            kwargs: dict[str, Any] = {"pool_pre_ping": True}
            if url.get_backend_name() == "sqlite":
                kwargs["connect_args"] = {"timeout": settings.sqlite_busy_timeout if settings else 30.0}
            engine = create_engine(url, **kwargs)
            _engines[key] = engine
        return engine


def dispose_engines() -> None:
    """Close every cached engine (tests; before forking)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def _config_error(node_id: str, problem: str) -> ExecutorError:
    return ExecutorError(f"Node '{node_id}': sql config: {problem}.", details={"node_id": node_id})
