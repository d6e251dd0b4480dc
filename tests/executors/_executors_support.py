"""Helpers for the executor tests (tests/executors): a real local HTTP server, contexts, and test executors.

The module itself is used as a custom-executor package in the tests (allowlisted by passing
``["_executors_support"]`` as the prefixes), so it also defines a few callables and one non-callable.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from maestro_dagster.executors import ExecutorContext, build_node_input
from maestro_dagster.settings import Settings

NOT_CALLABLE = {"this": "is a dict, not a function"}


def make_ctx(settings: Settings, node_id: str = "node_a", *, timeout: float | None = None) -> ExecutorContext:
    return ExecutorContext(
        workflow_id="wf_test",
        execution_id="exec_wf_test_20250101_000000_abcdef12",
        run_id="run-1234",
        node_id=node_id,
        attempt=1,
        artifacts_dir=settings.artifacts_dir / "exec_wf_test_20250101_000000_abcdef12" / node_id,
        settings=settings,
        timeout_seconds=timeout,
        log=logging.getLogger("tests.executors"),
    )


def make_input(node_id: str = "node_a", config: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    return build_node_input(node_id=node_id, node_name=kwargs.pop("node_name", node_id), node_config=config, **kwargs)


def returns_relative_artifact(node_input: dict[str, Any]) -> dict[str, Any]:
    return {"artifacts": ["relative/file.txt"]}


def returns_coroutine(node_input: dict[str, Any]) -> Any:
    async def later() -> dict[str, Any]:
        return {"from": "coroutine"}

    return later()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/json":
            payload = {"path": url.path, "query": parse_qs(url.query), "header": self.headers.get("X-Test")}
            self._send(200, json.dumps(payload).encode(), "application/json")
        elif url.path.startswith("/status/"):
            status = int(url.path.rsplit("/", 1)[1])
            self._send(status, f"server says no ({status})".encode(), "text/plain")
        elif url.path == "/text":
            self._send(200, ("line\n" * 2000).encode(), "text/plain; charset=utf-8")
        elif url.path == "/slow":
            time.sleep(2)
            self._send(200, b"{}", "application/json")
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        payload = {"received": body, "content_type": self.headers.get("Content-Type")}
        self._send(201, json.dumps(payload).encode(), "application/json")


@contextmanager
def http_server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (free port) in a thread; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
