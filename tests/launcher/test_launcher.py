"""MaestroRunLauncher with a real Dagster instance: runs start in (warm) worker processes and end mirrored;
a killed worker fails its run at once; terminate cancels; other runs are left to DefaultRunLauncher."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from _defs import chain, definition, node
from _procs import wait_for
from dagster import DagsterRunStatus
from dagster._core.launcher.base import WorkerStatus

from maestro_dagster.db.models import WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.executions import IN_PROCESS, create_execution, recon_job
from maestro_dagster.launcher import MaestroRunLauncher
from maestro_dagster.launcher.launcher import TAG_LAUNCH, worker_alive
from maestro_dagster.mirror import live
from maestro_dagster.mirror.sync import sync_runs
from maestro_dagster.tags import TAG_EXECUTION_ID, TAG_TRIGGER, TAG_WORKFLOW_ID

FINISHED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)


def one_node(workflow_id: str, executor: str, **config: Any) -> dict[str, Any]:
    return definition(workflow_id, {"only": node(executor, config=config)})


def three_nodes(workflow_id: str) -> dict[str, Any]:
    return definition(workflow_id, {n: node() for n in ("a", "b", "c")}, chain("a", "b", "c"))


def launch(env, workflow_id: str, context: dict | None = None) -> tuple[str, str]:
    """Create an execution and a run of it, and launch the run through the instance's run launcher."""
    execution_id, _spec = create_execution(env.settings, workflow_id, context or {}, "test")
    recon = recon_job(workflow_id)
    run = env.instance.create_run_for_job(
        job_def=recon.get_definition(),
        run_config={"initial_context": context or {}, "execution": IN_PROCESS},
        tags={TAG_EXECUTION_ID: execution_id, TAG_TRIGGER: "test", TAG_WORKFLOW_ID: workflow_id},
        job_code_origin=recon.get_python_origin(),
    )
    env.instance.launch_run(run.run_id, workspace=None)
    return run.run_id, execution_id


def finished(env, run_id: str, timeout: float = 90):
    return wait_for(
        lambda: (r := env.instance.get_run_by_id(run_id)) is not None and r.status in FINISHED and r,
        timeout,
        f"run {run_id} to end",
    )


def started(env, run_id: str):
    return wait_for(
        lambda: (r := env.instance.get_run_by_id(run_id)).status == DagsterRunStatus.STARTED and r, 60, "start"
    )


def execution_status(env, execution_id: str) -> str:
    with get_db(env.settings) as session:
        return session.get(WorkflowExecution, execution_id).status.value


def test_launcher_is_configured(maestro_env):
    assert isinstance(maestro_env.instance.run_launcher, MaestroRunLauncher)
    assert maestro_env.instance.run_launcher.warm_workers == 1
    with pytest.raises(ValueError, match="warm_workers must be 0 or more"):
        MaestroRunLauncher(warm_workers=-1)


def test_runs_start_cold_then_warm_and_are_mirrored(maestro_env):
    maestro_env.add_definition(three_nodes("launch_linear"))
    launcher = maestro_env.instance.run_launcher
    try:
        first, first_execution = launch(maestro_env, "launch_linear", {"n": 1})
        run = finished(maestro_env, first)
        assert run.status == DagsterRunStatus.SUCCESS
        assert run.tags[TAG_LAUNCH] == "cold"
        waiting = list(wait_for(lambda: launcher._warm, 10, "a warm worker to be started"))
        assert worker_alive(waiting[0].pid)

        second, second_execution = launch(maestro_env, "launch_linear", {"n": 2})
        run = finished(maestro_env, second)
        assert run.status == DagsterRunStatus.SUCCESS
        assert run.tags[TAG_LAUNCH] == "warm"
        assert run.tags[live.TAG_WORKER_PID] == str(waiting[0].pid)  # the waiting worker ran it
        messages = [e.message for e in maestro_env.instance.all_logs(second) if e.message]
        assert any(f"warm Maestro run worker process {waiting[0].pid}" in m for m in messages)
        for execution_id in (first_execution, second_execution):
            wait_for(lambda e=execution_id: execution_status(maestro_env, e) == "completed", 30, "mirrored")
            assert maestro_env.verify(execution_id) == []
        wait_for(lambda: not worker_alive(waiting[0].pid), 30, "the worker to exit after its run")
    finally:
        launcher.dispose()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_killed_worker_fails_its_run_at_once_and_health_says_failed(maestro_env):
    maestro_env.add_definition(one_node("launch_nap", "sleep", seconds=60))
    launcher = maestro_env.instance.run_launcher
    try:
        run_id, execution_id = launch(maestro_env, "launch_nap")
        run = started(maestro_env, run_id)
        pid = int(run.tags[live.TAG_WORKER_PID])
        assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        run = finished(maestro_env, run_id, timeout=15)
        assert run.status == DagsterRunStatus.FAILURE
        assert time.monotonic() - killed < 10  # by the launcher's reaper, not a monitoring poll
        failure = [e.message for e in maestro_env.instance.all_logs(run_id) if e.message]
        assert any(f"worker process {pid} exited with code -9" in m for m in failure), failure[-3:]
        assert launcher.check_run_worker_health(run).status == WorkerStatus.FAILED
        # Failed in Dagster; the worker is gone, so the tables follow with a catch-up pass (the daemon's sensor).
        sync_runs(maestro_env.instance, run_ids=[run_id], settings=maestro_env.settings)
        assert execution_status(maestro_env, execution_id) == "failed"
        assert maestro_env.verify(execution_id) == []
    finally:
        launcher.dispose()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_terminate_cancels_the_run_in_its_worker(maestro_env):
    maestro_env.add_definition(one_node("launch_cancel", "sleep", seconds=60))
    launcher = maestro_env.instance.run_launcher
    try:
        run_id, execution_id = launch(maestro_env, "launch_cancel")
        started(maestro_env, run_id)
        assert launcher.terminate(run_id) is True
        run = finished(maestro_env, run_id, timeout=30)
        assert run.status == DagsterRunStatus.CANCELED
        wait_for(lambda: execution_status(maestro_env, execution_id) == "cancelled", 30, "mirrored cancel")
        assert launcher.terminate(run_id) is False  # already ended
        assert maestro_env.verify(execution_id) == []
    finally:
        launcher.dispose()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_other_runs_are_left_to_the_default_launcher_and_dispose_releases_workers(maestro_env):
    maestro_env.add_definition(one_node("launch_other", "echo"))
    launcher: MaestroRunLauncher = maestro_env.instance.run_launcher
    recon = recon_job("launch_other")
    job_def = recon.get_definition()
    origin = recon.get_python_origin()
    plain = maestro_env.instance.create_run_for_job(job_def=job_def, job_code_origin=origin, tags={TAG_WORKFLOW_ID: ""})
    assert launcher.target_of(plain) is None  # not a Maestro workflow's run
    elsewhere = maestro_env.instance.create_run_for_job(
        job_def=job_def,
        job_code_origin=origin._replace(
            repository_origin=origin.repository_origin._replace(executable_path="/nonexistent/python")
        ),
        tags={TAG_WORKFLOW_ID: "launch_other"},
    )
    assert launcher.target_of(elsewhere) is None  # its Python is not on this host (a remote code server)
    assert launcher.check_run_worker_health(plain).status == WorkerStatus.RUNNING  # not ours: not judged
    ours = maestro_env.instance.create_run_for_job(
        job_def=job_def, job_code_origin=origin, tags={TAG_WORKFLOW_ID: "launch_other"}
    )
    target = launcher.target_of(ours)
    assert target is not None and target.module == "maestro_dagster.definitions"

    launcher._top_up(target)
    waiting = list(launcher._warm)
    assert len(waiting) == 1 and worker_alive(waiting[0].pid)
    launcher.dispose()
    wait_for(lambda: waiting[0].proc.poll() is not None, 30, "the waiting worker to exit when released")
    assert waiting[0].proc.returncode == 0
