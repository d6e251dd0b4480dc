"""PostgreSQL (Maestro's tables and Dagster's storage, one throwaway cluster) restarted while a run is going.

The run may survive or fail; either way, after ``maestro mirror sync`` the run is finished in Dagster (a
worker that crashed is failed by the dead-worker detection), the tables agree, and ``maestro mirror verify``
reports no difference.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import pytest
from _e2e_home import Home
from _e2e_procs import Cluster, wait_for
from dagster import DagsterRunStatus
from sqlalchemy import select

from maestro_dagster.db.models import ExecutionRun
from maestro_dagster.db.session import dispose_engines, get_db
from maestro_dagster.settings import get_settings

pytestmark = pytest.mark.e2e


def the_run(home: Home) -> ExecutionRun | None:
    with get_db(get_settings()) as session:
        rows = list(session.scalars(select(ExecutionRun)))
    return rows[0] if len(rows) == 1 else None


def node_running(home: Home, node_id: str) -> ExecutionRun | None:
    row = the_run(home)
    state = home.nodes(row.execution_id).get(node_id) if row else None
    return row if state is not None and state.status.value == "running" else None


@pytest.fixture
def pg_home(pg_cluster: Cluster, tmp_path, monkeypatch) -> Iterator[Home]:
    """A Maestro home whose tables and Dagster storage are both in the throwaway cluster."""
    home = Home(tmp_path / "pg", pg_cluster.create_database("maestro_e2e"))
    home.apply(monkeypatch)
    home.setup()
    try:
        yield home
    finally:
        home.stop_all()


def test_postgres_restart_mid_run(pg_cluster: Cluster, pg_home: Home):
    home = pg_home
    proc = home.start("maestro-run", sys.executable, "-m", "maestro_dagster", "run", "e2e_naps")
    try:
        row = wait_for(lambda: node_running(home, "nap2"), 300, "node nap2 to be running", interval=0.3)
        dispose_engines()
        down = time.monotonic()
        pg_cluster.stop("fast")
        time.sleep(3)  # the outage
        pg_cluster.start()
        print(f"PostgreSQL was down {time.monotonic() - down:.1f}s while nap2 ran")
        dispose_engines()  # this process's pooled connections died with the server
        exit_code = proc.popen.wait(120)
    finally:
        print(f"---- maestro run ----\n{home.log_tails()}")
    print(f"`maestro run` exited {exit_code}")

    assert home.maestro("mirror", "sync").returncode == 0
    run = home.run(row.run_id)
    print(f"Dagster run {row.run_id}: {run.status.value}")
    assert run.status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE)
    if exit_code != 0:
        assert run.status == DagsterRunStatus.FAILURE
    mirrored = home.wait_run_mirrored(row.run_id, timeout=120)
    execution = home.execution(mirrored.execution_id)
    nodes = {n: s.status.value for n, s in home.nodes(mirrored.execution_id).items()}
    print(f"execution {execution.id}: {execution.status.value}, nodes {nodes}")
    assert "running" not in nodes.values() and "pending" not in nodes.values()
    want = "completed" if run.status == DagsterRunStatus.SUCCESS else "failed"
    assert execution.status.value == want
    assert home.verify().returncode == 0  # every execution in the tables
