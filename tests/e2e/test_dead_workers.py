"""A run worker SIGKILLed mid-node ends ``failed`` in Dagster and in the tables, with no node left running.

(a) ``maestro run`` (no run launcher: nothing in Dagster watches it): ``maestro mirror sync`` notices that the
    pid in the run's ``maestro/worker_pid`` tag is gone and reports the run failed.
(b) a run launched through the webserver: the run worker the daemon launched is killed; Dagster (the code
    server that started it) or the mirror sensor reports it failed.
In both, the step process running the node ends with its worker (no events after the run ended).
"""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest
from _e2e_home import Home, Stack
from _e2e_procs import descendants, pid_alive, wait_for
from dagster import DagsterRunStatus
from sqlalchemy import select

from maestro_dagster.db.models import ExecutionRun, WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.mirror.live import TAG_WORKER_PID
from maestro_dagster.settings import get_settings

pytestmark = pytest.mark.e2e


def nap_running(home: Home, run_id: str | None = None, workflow_id: str = "e2e_sleep") -> ExecutionRun | None:
    """The run row once node ``nap`` is ``running`` in node_states (of ``run_id``, or the workflow's only run)."""
    with get_db(get_settings()) as session:
        stmt = select(ExecutionRun).join(WorkflowExecution).where(WorkflowExecution.workflow_id == workflow_id)
        rows = [r for r in session.scalars(stmt) if run_id in (None, r.run_id)]
    if len(rows) != 1:
        return None
    nap = home.nodes(rows[0].execution_id).get("nap")
    return rows[0] if nap is not None and nap.status.value == "running" else None


def assert_failed_everywhere(home: Home, run_id: str, execution_id: str) -> None:
    assert home.run(run_id).status == DagsterRunStatus.FAILURE
    execution = home.execution(execution_id)
    assert execution.status.value == "failed"
    nodes = {n: (s.status.value, s.error_type) for n, s in home.nodes(execution_id).items()}
    assert nodes == {"nap": ("failed", "RunEnded"), "after": ("blocked", None)}
    types = [e.event_type.value for e in home.events(execution_id)]
    assert types.count("workflow_failed") == 1 and "workflow_completed" not in types
    assert home.run_row(run_id).mirror_complete


def test_cli_run_killed_is_failed_by_mirror_sync(cli_home: Home):
    proc = cli_home.start("maestro-run", sys.executable, "-m", "maestro_dagster", "run", "e2e_sleep")
    row = wait_for(lambda: nap_running(cli_home), 300, "node nap to be running", interval=0.3)
    tags = cli_home.run(row.run_id).tags
    assert tags[TAG_WORKER_PID] == str(proc.pid)  # `maestro run` orchestrates the run itself
    steps = descendants(proc.pid)
    assert steps, "the multiprocess executor runs nap in a step subprocess"

    os.kill(proc.pid, signal.SIGKILL)
    killed = time.monotonic()
    proc.popen.wait(60)
    time.sleep(1)  # nothing notices a run outside a launcher: it stays STARTED until the catch-up loop runs
    assert cli_home.run(row.run_id).status == DagsterRunStatus.STARTED

    synced = time.monotonic()
    done = cli_home.maestro("mirror", "sync")
    detected = time.monotonic()
    assert done.returncode == 0 and f"run {row.run_id}: worker process is gone" in done.stdout
    print(
        f"DETECTION (maestro run, SIGKILL): `maestro mirror sync` failed the run {detected - killed:.1f}s after "
        f"the kill (the sync itself took {detected - synced:.1f}s)"
    )
    assert_failed_everywhere(cli_home, row.run_id, row.execution_id)
    wait_for(lambda: not any(pid_alive(p) for p in steps), 60, f"the step processes {steps} to end with their worker")
    assert cli_home.verify(row.run_id).returncode == 0


def test_webserver_run_worker_killed_is_failed(e2e: Stack):
    run_id = e2e.launch("e2e_sleep", {"case": "sigkill"})
    row = wait_for(lambda: nap_running(e2e, run_id), 300, "node nap to be running", interval=0.3)
    worker = int(e2e.run(run_id).tags[TAG_WORKER_PID])
    steps = descendants(worker)
    assert steps, "the multiprocess executor runs nap in a step subprocess"

    os.kill(worker, signal.SIGKILL)
    killed = time.monotonic()
    wait_for(lambda: e2e.run(run_id).status == DagsterRunStatus.FAILURE, 120, f"run {run_id} to be failed")
    failed = time.monotonic()
    e2e.wait_run_mirrored(run_id, timeout=120)  # the worker is gone: the sensor (5 s) makes the final pass
    wait_for(lambda: e2e.execution(row.execution_id).status.value == "failed", 60, "the execution to be failed")
    mirrored = time.monotonic()
    kinds = ("ENGINE_EVENT", "PIPELINE_FAILURE")
    failure = [e for e in e2e.instance.all_logs(run_id) if e.dagster_event_type and e.dagster_event_type.value in kinds]
    print(
        f"DETECTION (webserver run worker, SIGKILL): Dagster run FAILURE {failed - killed:.1f}s after the kill, "
        f"tables failed {mirrored - killed:.1f}s after; by: {[e.message[:90] for e in failure[-2:]]}"
    )
    assert_failed_everywhere(e2e, run_id, row.execution_id)
    wait_for(lambda: not any(pid_alive(p) for p in steps), 60, f"the step processes {steps} to end with their worker")
    assert e2e.verify(run_id).returncode == 0
