"""A step process never starts its node once its run's worker is gone or its run is over (issue 12, point 1).

(a) ``maestro run`` is SIGKILLed while the step process of its first node is still starting (importing Dagster):
    the step process ends without running the node. The run is failed by ``maestro mirror sync``; a resume runs
    the node once, so the node's side effect (a counter file) happened once, as the tables' attempts say, and
    ``mirror verify`` finds no difference.
(b) a step process of a run that is already finished (failed by its launcher while the step started) exits
    before its node runs, in a real multiprocessing child on a real Dagster instance.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from pathlib import Path

import pytest
import yaml
from _defs import chain, definition, node
from _e2e_home import Home
from _e2e_procs import descendants, pid_alive, wait_for
from dagster import DagsterRunStatus
from sqlalchemy import select

from maestro_dagster.db.models import WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.defs_store import sync_directory
from maestro_dagster.instance import get_instance
from maestro_dagster.mirror.live import exit_with_run_worker
from maestro_dagster.settings import get_settings

pytestmark = pytest.mark.e2e


def counted_workflow(home: Home) -> Path:
    """``e2e_once``: node ``count`` adds one to a counter file each time it runs (``flaky`` that never fails)."""
    counter = home.work / "count.txt"
    count = {"counter_file": str(counter), "succeed_on_attempt": 1}
    raw = definition("e2e_once", {"count": node("flaky", config=count), "after": node("echo")}, chain("count", "after"))
    (home.defs_dir / "e2e_once.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    settings = get_settings()
    with get_db(settings, immediate=True) as session:
        assert all(r.valid for r in sync_directory(session, home.defs_dir, settings))
    return counter


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def step_processes(pid: int) -> list[int]:
    """Descendants of ``pid`` that are multiprocessing step processes: spawned ones, or forks of the step forkserver
    (whose command line is the server's, and whose parent is the server); not the server, not the resource tracker."""
    found = []
    for child in descendants(pid):
        cmdline = _cmdline(child)
        if b"spawn_main" in cmdline or (b"forkserver" in cmdline and b"forkserver" in _cmdline(_parent(child))):
            found.append(child)
    return found


def test_worker_killed_while_step_starts_never_runs_the_node(cli_home: Home):
    counter = counted_workflow(cli_home)
    proc = cli_home.start("maestro-run", sys.executable, "-m", "maestro_dagster", "run", "e2e_once")
    steps = wait_for(lambda: step_processes(proc.pid), 120, "the step process of node count to start", interval=0.02)
    assert not counter.exists(), "the node ran before its step process could have started it"

    os.kill(proc.pid, signal.SIGKILL)
    proc.popen.wait(30)
    wait_for(lambda: not any(pid_alive(p) for p in steps), 120, f"the step processes {steps} to end")
    assert not counter.exists(), "a step process whose worker was gone ran its node"

    with get_db(get_settings()) as session:
        execution_id = session.scalars(
            select(WorkflowExecution.id).where(WorkflowExecution.workflow_id == "e2e_once")
        ).one()
    synced = cli_home.maestro("mirror", "sync")
    assert synced.returncode == 0 and "worker process is gone" in synced.stdout, synced.stdout + synced.stderr
    assert cli_home.execution(execution_id).status.value == "failed"

    resumed = cli_home.maestro("resume", execution_id, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert counter.read_text() == "1", "the node ran more than once"
    nodes = cli_home.nodes(execution_id)
    assert (nodes["count"].status.value, nodes["after"].status.value) == ("completed", "completed")
    assert nodes["count"].attempt_count >= 1  # one side effect, at least one attempt shown
    runs = [r.run_id for r in cli_home.runs(execution_id)]
    assert cli_home.verify(*runs).returncode == 0


def _step(ref_json: str, run_id: str, marker: str) -> None:
    """The body of a multiprocessing child: what a step process does before its node (then the 'node')."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef
    from dagster._serdes import deserialize_value

    instance = DagsterInstance.from_ref(deserialize_value(ref_json, InstanceRef))
    exit_with_run_worker(instance, instance.get_run_by_id(run_id))
    Path(marker).write_text("the node ran")


def test_step_of_a_finished_run_exits_before_its_node(cli_home: Home, tmp_path: Path):
    from dagster._serdes import serialize_value

    with get_instance(get_settings()) as instance:
        run = instance.create_run_for_job(job_def=_tiny_job(), run_config={})
        instance.report_run_failed(run, "failed by its launcher while a step process started")
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
        ref = serialize_value(instance.get_ref())
    marker = tmp_path / "ran.txt"
    child = multiprocessing.get_context("spawn").Process(target=_step, args=(ref, run.run_id, str(marker)))
    child.start()
    child.join(120)
    assert child.exitcode == 1 and not marker.exists()


def _tiny_job():
    from dagster import job, op

    @op
    def nothing() -> None:
        return None

    @job
    def tiny() -> None:
        nothing()

    return tiny
