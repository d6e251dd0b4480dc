"""The Maestro home of an end-to-end test (env, settings, tables, Dagster) and the webserver + daemon stack."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from _defs import chain, definition, etl, flaky, nap, node
from _e2e_procs import ROOT, Proc, free_port, tail, wait_for
from _procs import MAESTRO_ENV, TEST_SETTINGS
from sqlalchemy import delete, select

from maestro_dagster.db import migrate
from maestro_dagster.db.models import Artifact, ExecutionEvent, ExecutionRun, NodeState, WorkflowExecution
from maestro_dagster.db.session import dispose_engines, get_db
from maestro_dagster.defs_store import sync_directory
from maestro_dagster.instance import PG_URL_ENV, get_instance
from maestro_dagster.settings import Settings, get_settings

BIN = ROOT / ".venv" / "bin"
WORKSPACE = ROOT / "workspace.yaml"
LOCATION = REPOSITORY = "maestro"
SENSOR = "maestro_mirror_sensor"


def definitions(work: Path) -> list[dict[str, Any]]:
    """The workflows the e2e tests run (paths under ``work``)."""
    return [
        etl("e2e_flow", work / "out" / "report.txt", name="E2E flow"),
        flaky("e2e_flaky", work / "flaky.count"),
        nap("e2e_sleep", 30),
        definition(
            "e2e_triggered",
            {"inspect": node("echo"), "done": {"executor": "noop"}},
            chain("inspect", "done"),
            sensors=[
                {
                    "name": "inbox",
                    "type": "file",
                    "directory": str(work / "inbox"),
                    "pattern": "*.txt",
                    "enabled": True,
                    "minimum_interval_seconds": 1,
                },
                {"name": "queue", "type": "request_queue", "enabled": True, "minimum_interval_seconds": 1},
            ],
        ),
        definition(
            "e2e_naps",
            {f"nap{i}": node("sleep", config={"seconds": 2}) for i in range(1, 5)},
            chain(*(f"nap{i}" for i in range(1, 5))),
        ),
    ]


def failed(request: pytest.FixtureRequest) -> bool:
    """Whether the test of ``request`` failed in set-up or call (the reports this folder's conftest keeps)."""
    return any(getattr(request.node, f"rep_{w}", None) and getattr(request.node, f"rep_{w}").failed
               for w in ("setup", "call"))  # fmt: skip


H = TypeVar("H", bound="Home")


@contextmanager
def pointed_at(stack: H, mp: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[H]:
    """This test process pointed at ``stack`` (``stack.apply(mp)``); its logs printed if the test failed."""
    stack.apply(mp)
    yield stack
    if failed(request):
        print(stack.log_tails())


class Home:
    """A migrated Maestro home: environment for subprocesses, settings, tables and Dagster helpers."""

    def __init__(self, work: Path, database_url: str) -> None:
        self.work = work
        self.home = work / "home"
        self.defs_dir = work / "defs"
        self.logs = work / "logs"
        for d in (self.home, self.defs_dir, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in MAESTRO_ENV}
        env.update(TEST_SETTINGS)
        env.update(
            MAESTRO_HOME=str(self.home),
            MAESTRO_DATABASE_URL=database_url,
            MAESTRO_DEFS_DIR=str(self.defs_dir),
            DAGSTER_HOME=str(self.home / "dagster"),
            MAESTRO_ARTIFACT_ROOTS=str(work / "out"),  # where the write_file nodes of definitions() write
            PYTHONUNBUFFERED="1",
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        if not database_url.startswith("sqlite"):
            env[PG_URL_ENV] = database_url
        self.env = env
        self.procs: list[Proc] = []
        self._instance: Any = None

    # -- this process ---------------------------------------------------------------------------------
    def apply(self, mp: pytest.MonkeyPatch) -> Settings:
        """Point this process at the home (env, settings cache, engines)."""
        for name in MAESTRO_ENV:
            mp.delenv(name, raising=False)
        for name in (
            "MAESTRO_HOME",
            "MAESTRO_DATABASE_URL",
            "MAESTRO_DEFS_DIR",
            "DAGSTER_HOME",
            "MAESTRO_ARTIFACT_ROOTS",
            PG_URL_ENV,
            *TEST_SETTINGS,
        ):
            if name in self.env:
                mp.setenv(name, self.env[name])
        get_settings.cache_clear()
        dispose_engines()
        return get_settings()

    def setup(self) -> None:
        """Migrate, write and sync the definitions, prepare DAGSTER_HOME (and Dagster's own tables)."""
        settings = get_settings()
        migrate.upgrade(settings)
        for raw in definitions(self.work):
            (self.defs_dir / f"{raw['id']}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        with get_db(settings, immediate=True) as session:
            results = sync_directory(session, self.defs_dir, settings)
        assert all(r.valid for r in results), [r.errors for r in results if not r.valid]
        get_instance(settings).dispose()  # creates Dagster's storage once, before several processes race to

    # -- subprocesses ---------------------------------------------------------------------------------
    def start(self, name: str, *args: str) -> Proc:
        proc = Proc(name, list(args), self.env, self.logs / f"{name}.log")
        self.procs.append(proc)
        return proc

    def maestro(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run the ``maestro`` CLI to the end; output is kept in the result (and echoed for the test log)."""
        done = subprocess.run(
            [sys.executable, "-m", "maestro_dagster", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        print(f"$ maestro {' '.join(args)}  -> exit {done.returncode}\n{done.stdout}{done.stderr}")
        return done

    def verify(self, *run_ids: str) -> subprocess.CompletedProcess:
        return self.maestro("mirror", "verify", *[a for r in run_ids for a in ("--run", r)])

    def stop_all(self) -> None:
        for proc in self.procs:  # all at once: each may take a few seconds to shut down
            if proc.alive():
                proc.popen.terminate()
        for proc in reversed(self.procs):
            proc.stop()
        if self._instance is not None:
            self._instance.dispose()
            self._instance = None

    def log_tails(self) -> str:
        return "\n".join(f"---- {p.name} ({p.log}) ----\n{tail(p.log)}" for p in self.procs)

    # -- Dagster --------------------------------------------------------------------------------------
    @property
    def instance(self) -> Any:
        """A Dagster instance on the home's storage, for this process (disposed by ``stop_all``)."""
        if self._instance is None:
            self._instance = get_instance(get_settings())
        return self._instance

    def run(self, run_id: str):
        return self.instance.get_run_by_id(run_id)

    # -- the mirrored tables --------------------------------------------------------------------------
    def execution(self, execution_id: str) -> WorkflowExecution | None:
        with get_db(get_settings()) as session:
            return session.get(WorkflowExecution, execution_id)

    def run_row(self, run_id: str) -> ExecutionRun | None:
        with get_db(get_settings()) as session:
            return session.get(ExecutionRun, run_id)

    def runs(self, execution_id: str) -> list[ExecutionRun]:
        with get_db(get_settings()) as session:
            rows = session.scalars(select(ExecutionRun).where(ExecutionRun.execution_id == execution_id))
            return sorted(rows, key=lambda r: r.created_at)

    def nodes(self, execution_id: str) -> dict[str, NodeState]:
        with get_db(get_settings()) as session:
            rows = session.scalars(select(NodeState).where(NodeState.execution_id == execution_id))
            return {r.node_id: r for r in rows}

    def events(self, execution_id: str) -> list[ExecutionEvent]:
        with get_db(get_settings()) as session:
            stmt = select(ExecutionEvent).where(ExecutionEvent.execution_id == execution_id)
            return list(session.scalars(stmt.order_by(ExecutionEvent.id)))

    def delete_execution(self, execution_id: str) -> None:
        with get_db(get_settings(), immediate=True) as session:
            for model in (ExecutionEvent, Artifact, NodeState, ExecutionRun, WorkflowExecution):
                column = model.id if model is WorkflowExecution else model.execution_id
                session.execute(delete(model).where(column == execution_id))

    def wait_run_mirrored(self, run_id: str, timeout: float = 120) -> ExecutionRun:
        """Until the run's row says its mirror is complete (the run is over and its final pass done)."""
        return wait_for(
            lambda: (row := self.run_row(run_id)) is not None and row.mirror_complete and row,
            timeout,
            f"run {run_id} to be completely mirrored",
        )


# ---- the webserver + daemon stack --------------------------------------------------------------------


class Stack(Home):
    port: int = 0
    webserver: Proc
    daemon: Proc

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def graphql(self, query: str, variables: dict[str, Any] | None = None, timeout: float = 30) -> dict[str, Any]:
        payload = {"query": query, "variables": variables or {}}
        response = httpx.post(f"{self.url}/graphql", json=payload, timeout=timeout)
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def launch(self, workflow_id: str, initial_context: dict[str, Any] | None = None, **run_config: Any) -> str:
        """Submit a run of the workflow's job through the webserver (queued; the daemon dequeues it)."""
        from dagster_graphql import DagsterGraphQLClient

        client = DagsterGraphQLClient("127.0.0.1", port_number=self.port)
        return client.submit_job_execution(
            workflow_id,
            repository_location_name=LOCATION,
            repository_name=REPOSITORY,
            run_config={"initial_context": initial_context or {}, **run_config},
        )

    def start_servers(self) -> None:
        self.port = free_port()
        self.webserver = self.start(
            "webserver", str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(self.port), "-w", str(WORKSPACE)
        )
        self.daemon = self.start("daemon", str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE))
        wait_for(self._location_loaded, 300, "the webserver to serve location 'maestro'", interval=0.5)
        wait_for(self._sensor_ticked, 300, f"the daemon's first {SENSOR} tick", interval=0.5)

    def _check_alive(self) -> None:
        for proc in (self.webserver, self.daemon):
            assert proc.alive(), f"{proc.name} exited with {proc.popen.returncode}:\n{tail(proc.log)}"

    def _location_loaded(self) -> bool:
        self._check_alive()
        try:
            httpx.get(f"{self.url}/server_info", timeout=5).raise_for_status()
        except httpx.HTTPError:
            return False
        data = self.graphql(LOCATIONS_QUERY)
        entries = {e["name"]: e for e in data["workspaceOrError"].get("locationEntries", [])}
        entry = entries.get(LOCATION)
        if entry is None or entry["loadStatus"] != "LOADED":
            return False
        loaded = entry["locationOrLoadError"]
        assert loaded["__typename"] != "PythonError", f"location {LOCATION} failed to load: {loaded['message']}"
        return True

    def sensor_ticks(self, limit: int = 5) -> list[dict[str, Any]]:
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "sensorName": SENSOR}
        data = self.graphql(SENSOR_TICKS_QUERY, {"selector": selector, "limit": limit})["sensorOrError"]
        assert data["__typename"] == "Sensor", data
        return data["sensorState"]["ticks"]

    def _sensor_ticked(self) -> bool:
        self._check_alive()
        return bool(self.sensor_ticks(1))


LOCATIONS_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""
SENSOR_TICKS_QUERY = """
query Ticks($selector: SensorSelector!, $limit: Int) { sensorOrError(sensorSelector: $selector) { __typename
  ... on Sensor { sensorState { status ticks(limit: $limit) { status timestamp skipReason } } } } }
"""
