"""The database down, hanging or read-only (issue 12, point 3), on a throwaway PostgreSQL cluster started here
(never the shared server) and on real SQLite files.

- ``maestro run``, ``maestro mirror sync``, ``maestro api`` (and the other commands that need the tables) print one
  line naming the database (password masked) and the fix, and exit 1: no traceback, no driver text, no retries.
- ``GET /health`` answers 200 ``degraded`` within its budget (``HEALTH_BUDGET_SECONDS``), also when the server
  accepts connections and never answers (its postmaster stopped with SIGSTOP); ``/metrics`` and ``/health/ready``
  answer 503 within it; the API's 503 bodies carry the clean message, not the driver's.
- ``maestro db health`` reports a database it cannot write as unhealthy (a write in a transaction rolled back).
- A failure of Dagster's own storage (raised inside dagster_postgres) is the same kind of clear message.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from _maestro_cli import DRIVER_TEXT, assert_clean_error, run_cli
from _procs import Proc, free_port, tail, wait_for
from e2e._e2e_procs import Cluster
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from maestro_dagster.api.routes_system import HEALTH_BUDGET_SECONDS
from maestro_dagster.db import migrate
from maestro_dagster.db.session import CONNECT_TIMEOUT_SECONDS, dispose_engines
from maestro_dagster.settings import get_settings

pytestmark = pytest.mark.postgres
PASSWORD = "Sup3r-S3cret-pw"  # the cluster trusts local connections: the password is only there to be masked
REFUSED = ("Cannot connect", "connection refused", "Start the PostgreSQL server", ":***@")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg_url(cluster: Cluster, tmp_path, monkeypatch) -> str:
    """A Maestro database on the running cluster, migrated by ``maestro db upgrade`` (Dagster's storage too)."""
    if not cluster.running():
        cluster.start()
    name = f"maestro_down_{os.getpid()}_{free_port()}"
    url = make_url(cluster.create_database(name)).set(password=PASSWORD).render_as_string(hide_password=False)
    monkeypatch.setenv("MAESTRO_DATABASE_URL", url)
    monkeypatch.setenv("MAESTRO_HOME", str(tmp_path / "home"))
    upgraded = run_cli("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    return url


def get_settings_now():
    """The settings of this test's environment as it is now (it was changed after they were first read)."""
    get_settings.cache_clear()
    dispose_engines()
    return get_settings()


@contextmanager
def hanging(cluster: Cluster) -> Iterator[None]:
    """The server accepts connections (the kernel queues them) but never answers: its postmaster is stopped."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    os.kill(postmaster, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(postmaster, signal.SIGCONT)


def test_commands_with_the_database_down_say_which_and_the_fix(cluster: Cluster, pg_url: str) -> None:
    cluster.stop()
    seconds = {}
    for args in (
        ("run", "sdlc_linear"),
        ("mirror", "sync"),
        ("mirror", "verify"),
        ("api", "--port", str(free_port())),
        ("db", "health"),
        ("defs", "list"),
    ):
        result = run_cli(*args)
        assert_clean_error(result, *REFUSED, secret=PASSWORD)
        seconds[" ".join(args[:2])] = round(result.elapsed, 1)
    print(f"seconds to the error with the database down: {seconds}")


def test_a_hanging_server_is_a_clear_error_after_the_connect_timeout(cluster: Cluster, pg_url: str) -> None:
    with hanging(cluster):
        result = run_cli("mirror", "sync")
    assert_clean_error(result, "Cannot connect", "no answer within the connect timeout", ":***@", secret=PASSWORD)
    print(f"`maestro mirror sync` with the server hanging: error after {result.elapsed:.1f} s")
    assert result.elapsed < CONNECT_TIMEOUT_SECONDS + 60  # libpq's connect_timeout; the margin is for a loaded machine


def _get(client: httpx.Client, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


def _assert_503(response: httpx.Response, *needles: str) -> dict:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error"] == "database_unavailable", body
    for needle in needles:
        assert needle in body["message"], body
    for driver in DRIVER_TEXT:
        assert driver not in response.text, body
    assert PASSWORD not in response.text
    return body


def test_the_api_with_the_database_down_or_hanging(cluster: Cluster, pg_url: str, tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "MAESTRO_API_OPEN": "true", "MAESTRO_DAGSTER_URL": f"http://127.0.0.1:{free_port()}"}
    args = [sys.executable, "-m", "maestro_dagster", "api", "--port", str(port)]
    api = Proc("maestro-api", args, env, tmp_path / "api.log")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            wait_for(lambda: client.get("/health/live").status_code == 200, 120, "the API to serve")
            assert client.get("/health/ready").status_code == 200  # Dagster's instance is not opened yet
            figures = {}

            cluster.stop()
            health, figures["/health down"] = _get(client, "/health")  # its first call opens Dagster's instance
            assert health.status_code == 200, health.text
            body = health.json()
            assert (body["status"], body["database"]) == ("degraded", "disconnected"), body
            assert all(n in body["database_error"] for n in REFUSED) and PASSWORD not in health.text, body
            metrics, figures["/metrics down"] = _get(client, "/metrics")
            _assert_503(metrics, *REFUSED)
            ready, figures["/health/ready down"] = _get(client, "/health/ready")
            assert ready.status_code == 503, ready.text
            for path in ("/api/workflows", "/api/executions"):
                _assert_503(client.get(path), *REFUSED)

            cluster.start()
            wait_for(lambda: client.get("/health").json()["database"] == "connected", 60, "the database back")
            assert client.get("/metrics").status_code == 200
            with hanging(cluster):
                health, figures["/health hanging"] = _get(client, "/health")
                assert health.status_code == 200 and health.json()["status"] == "degraded", health.text
                assert f"no answer within {HEALTH_BUDGET_SECONDS:g} s" in health.json()["database_error"]
                metrics, figures["/metrics hanging"] = _get(client, "/metrics")
                _assert_503(metrics, f"no answer within {HEALTH_BUDGET_SECONDS:g} s")
            print(f"seconds to answer: { {k: round(v, 2) for k, v in figures.items()} }")
            # The bound is the budget (its mechanism is asserted above); the margin is for a loaded machine.
            assert max(figures.values()) < HEALTH_BUDGET_SECONDS + 5, figures

            recovered = wait_for(lambda: client.get("/health").json()["database"] == "connected", 60, "recovery")
            assert recovered
        assert "Traceback" not in tail(api.log, 10_000), tail(api.log)
    finally:
        api.stop()


def test_db_health_reports_a_read_only_postgres_database(cluster: Cluster, pg_url: str) -> None:
    admin = create_engine(make_url(pg_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{make_url(pg_url).database}" SET default_transaction_read_only = on'))
    admin.dispose()
    result = run_cli("db", "health")
    assert "connect:  ok" in result.stdout and "status:   healthy" not in result.stdout, result.stdout
    assert_clean_error(result, "cannot be written (read-only)", secret=PASSWORD)


def _as_this_user(*args: str) -> tuple[str, ...]:
    """Run ``args`` subject to file permissions: as root, without the capabilities that bypass them."""
    if os.geteuid() != 0:
        return args
    return ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", *args)


@pytest.mark.parametrize("read_only", ["file", "directory"])
def test_db_health_reports_a_read_only_sqlite_database(tmp_path, monkeypatch, read_only) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("MAESTRO_HOME", str(home))
    assert run_cli("db", "upgrade").returncode == 0
    target = home / "maestro_workflows.db" if read_only == "file" else home
    target.chmod(0o444 if read_only == "file" else 0o555)
    try:
        cmd = _as_this_user(sys.executable, "-m", "maestro_dagster", "db", "health")
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=dict(os.environ))
    finally:
        target.chmod(0o644 if read_only == "file" else 0o755)
    assert "status:   healthy" not in result.stdout, result.stdout
    assert_clean_error(result, "cannot be written (read-only)")


def test_a_failure_of_dagsters_own_storage_is_a_clear_message(cluster: Cluster, tmp_path, monkeypatch) -> None:
    """A user who may create Maestro's schema but not Dagster's tables (PostgreSQL 15+: no CREATE on ``public``)."""
    if not cluster.running():
        cluster.start()
    name = f"maestro_limited_{os.getpid()}_{free_port()}"
    owner_url = make_url(cluster.create_database(name))
    admin = create_engine(owner_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{name}" LOGIN'))
        conn.execute(text(f'GRANT CREATE ON DATABASE "{name}" TO "{name}"'))
        conn.execute(text(f'REVOKE CREATE ON SCHEMA public FROM PUBLIC, "{name}"'))
    admin.dispose()
    url = owner_url.set(username=name, password=PASSWORD).render_as_string(hide_password=False)
    monkeypatch.setenv("MAESTRO_DATABASE_URL", url)
    monkeypatch.setenv("MAESTRO_HOME", str(tmp_path / "home"))
    upgraded = run_cli("db", "upgrade")  # Maestro's tables are created, in Maestro's schema; Dagster's cannot be
    assert "Traceback" not in upgraded.stderr, upgraded.stderr
    assert migrate.current_revision(get_settings_now()) == migrate.head_revision()
    assert_clean_error(run_cli("run", "sdlc_linear"), "Dagster's storage", "public schema", ":***@", secret=PASSWORD)
