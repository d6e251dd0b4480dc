"""The API test stack (``ApiStack``) and its helpers: PostgreSQL, a real Dagster webserver + daemon, and two real
``maestro api`` processes; the fixtures that start it are in this folder's ``conftest.py``.

A module of its own (not ``conftest``) so the tests can import it by a name no other test folder uses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from _defs import chain, definition, etl, flaky, nap, node
from _procs import MAESTRO_ENV, TEST_SETTINGS, Proc, free_port, tail, wait_for

from maestro_dagster.instance import PG_URL_ENV, prepare_dagster_env
from maestro_dagster.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
TOKENS = {"viewer": "tok-viewer-1", "operator": "tok-operator-1", "admin": "tok-admin-1"}
MAX_BODY = 64 * 1024
CANARY_SECRET = "canary-postgres-password-5e1f"
TERMINAL = {"completed", "failed", "cancelled", "paused"}


def definitions(work: Path) -> list[dict[str, Any]]:
    """The workflows synced from the defs dir (``api_created`` is posted by a test instead)."""
    return [
        etl("api_echo", work / "out" / "echo.txt", name="API echo"),
        flaky("api_flaky", work / "flaky.count"),
        nap("api_sleep", 20),
        definition(
            "api_review",
            {
                "review": {"type": "human_review", "config": {"poll_seconds": 0.2, "timeout_seconds": 180}},
                "publish": node("echo"),
            },
            chain("review", "publish"),
        ),
    ]


class ApiStack:
    def __init__(self, work: Path, database_url: str) -> None:
        self.work, self.database_url = work, database_url
        self.home, self.defs_dir, self.logs = work / "home", work / "defs", work / "logs"
        for d in (self.home, self.defs_dir, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        self.dagster_port, self.port_a, self.port_b = free_port(), free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if k not in MAESTRO_ENV}
        env.update(TEST_SETTINGS)
        env.update(
            MAESTRO_HOME=str(self.home),
            MAESTRO_DATABASE_URL=database_url,
            MAESTRO_DEFS_DIR=str(self.defs_dir),
            DAGSTER_HOME=str(self.home / "dagster"),
            MAESTRO_DAGSTER_URL=self.dagster_url,
            MAESTRO_API_TOKENS=json.dumps({tok: {"role": role, "name": f"{role}-bot"} for role, tok in TOKENS.items()}),
            MAESTRO_API_MAX_BODY_BYTES=str(MAX_BODY),
            MAESTRO_ARTIFACT_ROOTS=str(work / "out"),  # the example workflows' write_file targets
            POSTGRES_PASSWORD=CANARY_SECRET,  # ignored (MAESTRO_DATABASE_URL wins); no node may ever read it
            PYTHONUNBUFFERED="1",
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        env[PG_URL_ENV] = database_url
        self.env = env
        self.procs: list[Proc] = []

    dagster_url = property(lambda self: f"http://127.0.0.1:{self.dagster_port}")
    url_a = property(lambda self: f"http://127.0.0.1:{self.port_a}")
    url_b = property(lambda self: f"http://127.0.0.1:{self.port_b}")

    # -- set-up ---------------------------------------------------------------------------------------
    def maestro(self, *args: str, timeout: float = 600) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "maestro_dagster", *args],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        assert done.returncode == 0, f"maestro {' '.join(args)} -> {done.returncode}\n{done.stdout}{done.stderr}"
        return done.stdout

    def setup(self) -> None:
        self.maestro("db", "upgrade")
        for raw in definitions(self.work):
            (self.defs_dir / f"{raw['id']}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        self.maestro("defs", "sync")
        with pytest.MonkeyPatch.context() as mp:  # prepare_dagster_env exports variables: keep them local
            for name in ("MAESTRO_HOME", "MAESTRO_DATABASE_URL", "DAGSTER_HOME", PG_URL_ENV):
                mp.setenv(name, self.env[name])
            get_settings.cache_clear()
            prepare_dagster_env(get_settings())
        get_settings.cache_clear()

    def start(self, name: str, *args: str, **extra_env: str) -> Proc:
        proc = Proc(name, list(args), {**self.env, **extra_env}, self.logs / f"{name}.log")
        self.procs.append(proc)
        return proc

    def start_all(self) -> None:
        ws = str(ROOT / "workspace.yaml")
        web = self.start("webserver", str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(self.dagster_port),
                         "-w", ws)  # fmt: skip
        daemon = self.start("daemon", str(BIN / "dagster-daemon"), "run", "-w", ws)
        api = [sys.executable, "-m", "maestro_dagster", "api", "--port"]
        api_a = self.start("api_a", *api, str(self.port_a))
        api_b = self.start("api_b", *api, str(self.port_b), MAESTRO_API_POLL_SECONDS="60")

        def up(proc: Proc, url: str) -> bool:
            assert proc.alive(), f"{proc.name} exited with {proc.popen.returncode}:\n{tail(proc.log)}"
            return httpx.get(url, timeout=5).status_code == 200

        wait_for(lambda: up(api_a, f"{self.url_a}/health/ready"), 180, "API A")
        wait_for(lambda: up(api_b, f"{self.url_b}/health/ready"), 180, "API B")
        wait_for(lambda: up(web, f"{self.dagster_url}/server_info") and self.jobs_loaded(), 300, "the webserver")
        wait_for(lambda: up(daemon, f"{self.dagster_url}/server_info") and self.daemon_ready(), 300, "the daemon")

    def stop_all(self) -> None:
        for proc in reversed(self.procs):  # all at once, then wait for each
            proc.terminate()
        for proc in reversed(self.procs):
            proc.stop()

    def log_tails(self) -> str:
        return "\n".join(f"---- {p.name} ({p.log}) ----\n{tail(p.log)}" for p in self.procs)

    # -- Dagster ----------------------------------------------------------------------------------------
    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.post(f"{self.dagster_url}/graphql", json={"query": query, "variables": variables or {}},
                              timeout=30)  # fmt: skip
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def job_names(self) -> set[str]:
        data = self.graphql(JOBS_QUERY)["repositoryOrError"]
        return {j["name"] for j in data.get("jobs", [])}

    def jobs_loaded(self) -> bool:
        return {"api_echo", "api_sleep"} <= self.job_names()

    def daemon_ready(self) -> bool:
        statuses = self.graphql(DAEMONS_QUERY)["instance"]["daemonHealth"]["allDaemonStatuses"]
        return any(s["daemonType"] == "QUEUED_RUN_COORDINATOR" and s["healthy"] for s in statuses)

    def store_and_load(self, raw: dict[str, Any]) -> None:
        """Store a definition (as a synced file would be) and wait until the webserver has loaded its job."""
        from maestro_dagster.db.session import get_db
        from maestro_dagster.defs_store import store_definition
        from maestro_dagster.executions.gateway import DagsterGateway

        with get_db(get_settings(), immediate=True) as session:
            stored = store_definition(session, raw, get_settings(), source=f"workflow_defs/{raw['id']}.yaml")
            stored[0].raise_if_invalid()
        DagsterGateway(self.dagster_url).reload_location()
        wait_for(lambda: raw["id"] in self.job_names(), 300, f"the webserver to load {raw['id']}", interval=0.5)

    def run_status(self, run_id: str) -> str:
        return self.graphql(RUN_QUERY, {"runId": run_id})["runOrError"]["status"]

    # -- the API ----------------------------------------------------------------------------------------
    def client(self, role: str | None = "admin", base: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
        return httpx.Client(base_url=base or self.url_a, headers=headers, timeout=60)

    def ws_url(self, path: str, role: str = "viewer", base: str | None = None, **params: Any) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"token": TOKENS[role], **params}.items())
        return f"{(base or self.url_a).replace('http://', 'ws://')}{path}?{query}"

    def execute(self, workflow_id: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
        with self.client("operator") as c:
            response = c.post(f"/api/workflows/{workflow_id}/execute", json={"initial_context": context or {}})
        assert response.status_code == 202, response.text
        return response.json()

    def execution(self, execution_id: str) -> dict[str, Any]:
        with self.client("viewer") as c:
            response = c.get(f"/api/executions/{execution_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_status(self, execution_id: str, statuses: set[str] | str, timeout: float = 300) -> dict[str, Any]:
        wanted = {statuses} if isinstance(statuses, str) else statuses

        def check() -> dict[str, Any] | None:
            body = self.execution(execution_id)
            if body["status"] in TERMINAL and body["status"] not in wanted:
                raise AssertionError(f"{execution_id} ended {body['status']}, wanted {wanted}: {body}")
            return body if body["status"] in wanted else None

        return wait_for(check, timeout, f"{execution_id} to be {wanted}", interval=0.3)

    def wait_runs(self, execution_id: str, count: int, timeout: float = 300) -> dict[str, Any]:
        """Until the execution lists ``count`` runs (a resume's run is listed once the mirror sees it start)."""

        def check() -> dict[str, Any] | None:
            body = self.execution(execution_id)
            return body if len(body["runs"]) >= count else None

        return wait_for(check, timeout, f"{execution_id} to list {count} runs", interval=0.3)

    def wait_node(self, execution_id: str, node_id: str, status: str, timeout: float = 300) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            nodes = {n["node_id"]: n for n in self.execution(execution_id)["node_states"]}
            return nodes.get(node_id) if nodes.get(node_id, {}).get("status") == status else None

        return wait_for(check, timeout, f"node {node_id} of {execution_id} to be {status}", interval=0.3)


JOBS_QUERY = """
{ repositoryOrError(repositorySelector: {repositoryLocationName: "maestro", repositoryName: "maestro"}) {
  __typename ... on Repository { jobs { name } } } }
"""
DAEMONS_QUERY = "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"
RUN_QUERY = "query R($runId: ID!) { runOrError(runId: $runId) { __typename ... on Run { status } } }"
