"""Helpers for tests/compiler: build specs and jobs, run them on a real Dagster instance, read the event log.

``job_from_raw`` is also the reconstructor used with ``build_reconstructable_job``, so multiprocess runs
rebuild the same job in every step process (this directory is on their ``sys.path``).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from dagster import (
    DagsterEventType,
    DagsterInstance,
    ExecuteInProcessResult,
    JobDefinition,
    build_reconstructable_job,
)
from dagster._core.definitions.reconstruct import ReconstructableJob

from maestro_dagster.compiler import OUTPUT_NAME, NodeResult, build_job
from maestro_dagster.names import dagster_name
from maestro_dagster.policy import DefinitionPolicy
from maestro_dagster.spec import WorkflowSpec, parse_definition

ALLOWED = ["maestro_examples", "maestro_dagster.executors"]
HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parents[1]
PY = sys.executable


def spec_of(raw: Mapping[str, Any]) -> WorkflowSpec:
    return parse_definition(dict(raw), policy=DefinitionPolicy.allowing(*ALLOWED))


def job_from_raw(raw: Mapping[str, Any], version: int = 1) -> JobDefinition:
    return build_job(spec_of(raw), version=version)


def reconstructable_job(raw: Mapping[str, Any]) -> ReconstructableJob:
    """A job every step process can rebuild (for ``execute_job`` with the multiprocess executor)."""
    return build_reconstructable_job(
        "_compiler_support",
        "job_from_raw",
        reconstructable_args=(dict(raw),),
        reconstructor_working_directory=str(HERE),
    )


def run(
    raw_or_job: Mapping[str, Any] | JobDefinition,
    instance: DagsterInstance,
    initial_context: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> ExecuteInProcessResult:
    job = raw_or_job if isinstance(raw_or_job, JobDefinition) else job_from_raw(raw_or_job)
    return job.execute_in_process(
        run_config={"initial_context": dict(initial_context or {})},
        instance=instance,
        tags=dict(tags or {}),
        raise_on_error=False,
    )


def result_of(result: ExecuteInProcessResult, node_id: str) -> NodeResult:
    return result.output_for_node(dagster_name(node_id), OUTPUT_NAME)


def failure_text(result: ExecuteInProcessResult, node_id: str) -> str:
    """The whole error chain of a node's step failure (Dagster wraps the executor's error)."""
    data = result.failure_data_for_node(dagster_name(node_id))
    assert data is not None, f"node {node_id} did not fail"
    return data.error.to_string()


def output_metadata(result: ExecuteInProcessResult, node_id: str) -> dict[str, Any]:
    """The node's Output metadata as plain values."""
    for event in result.events_for_node(dagster_name(node_id)):
        if event.event_type == DagsterEventType.STEP_OUTPUT:
            return {key: getattr(value, "value", value) for key, value in event.step_output_data.metadata.items()}
    raise AssertionError(f"node {node_id} has no STEP_OUTPUT event")


def step_events(instance: DagsterInstance, run_id: str, event_type: DagsterEventType) -> list[str]:
    """Step keys of the run's events of one type, in log order."""
    return [entry.step_key for entry in instance.all_logs(run_id, of_type=event_type)]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class _JsonHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/status"):
            body, status = b'{"status": "ok", "version": "1.2.3"}', 200
        else:
            body, status = b"no such page", 500
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status == 200 else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def http_server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (port chosen by the OS); yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JsonHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
