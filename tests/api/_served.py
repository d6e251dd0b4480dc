"""A real uvicorn server in a thread of the test process, serving ``create_app`` on a migrated SQLite or PostgreSQL
database (the root ``db`` fixture) with a closed port as its Dagster webserver (every call to Dagster fails as
unreachable): for API behaviour that needs no Dagster run, in a second instead of the stack's minute.

uvicorn runs with ``log_config=None``: its loggers keep the filters the app installs and propagate to the root
logger, where ``caplog`` reads the records as the server logged them.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from _procs import free_port, wait_for
from sqlalchemy import func, select

from maestro_dagster.api.app import create_app
from maestro_dagster.db.models import AuditLog
from maestro_dagster.db.session import get_db
from maestro_dagster.defs_store import store_definition
from maestro_dagster.settings import Settings

TOKENS = {"viewer": "srv-viewer-1", "operator": "srv-operator-1", "admin": "srv-admin-1"}
MAX_BODY = 64 * 1024
UNNAMED = "Qx7wPlm2Zr9KdT4vB"  # a viewer token without a name in MAESTRO_API_TOKENS
TOKENS_SETTING = json.dumps({**{tok: {"role": role, "name": f"{role}-bot"} for role, tok in TOKENS.items()},
                             UNNAMED: "viewer"})  # fmt: skip
DEFINITION = {"id": "served", "nodes": {"a": {"executor": "noop"}, "b": {"executor": "noop"}},
              "edges": [{"source": "a", "target": "b"}]}  # fmt: skip


class Served:
    def __init__(self, url: str, settings: Settings) -> None:
        self.url, self.settings = url, settings

    def client(self, role: str | None = "admin", **headers: str) -> httpx.Client:
        auth = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers={**auth, **headers}, timeout=30)

    def ws_url(self, path: str) -> str:
        return self.url.replace("http://", "ws://") + path

    def store(self, definition: dict[str, Any] = DEFINITION) -> None:
        """A definition stored as ``maestro defs sync`` would (no Dagster reload: there is none here)."""
        with get_db(self.settings) as session:
            store_definition(session, definition, self.settings, source="test")

    def last_audit_id(self) -> int:
        with get_db(self.settings) as session:
            return session.scalar(select(func.coalesce(func.max(AuditLog.id), 0))) or 0

    def audit_rows_after(self, last_id: int) -> list[AuditLog]:
        with get_db(self.settings) as session:
            return list(session.scalars(select(AuditLog).where(AuditLog.id > last_id).order_by(AuditLog.id)))


@contextmanager
def serve(settings: Settings) -> Iterator[Served]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, name="uvicorn-under-test", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), 30, "the in-process API server")
        assert thread.is_alive(), "the in-process API server did not start"
        yield Served(f"http://127.0.0.1:{port}", settings)
    finally:
        server.should_exit = True
        thread.join(30)


def mutating_calls(base_url: str) -> list[tuple[str, str, str]]:
    """Every POST / PUT / DELETE operation of a live OpenAPI document: (method, route, path with ids filled)."""
    paths = httpx.get(f"{base_url}/openapi.json", timeout=30).json()["paths"]
    calls = [
        (method.upper(), route, re.sub(r"\{[^}]+\}", "x", route))
        for route, operations in paths.items()
        for method in operations
        if method in ("post", "put", "delete", "patch")
    ]
    assert len(calls) >= 9, calls
    return calls
