"""The warm run worker is reused after the daemon replaces its code server, and never runs changed code.

With a real Dagster instance and the daemon's own workspace objects: ``dagster-daemon`` clears its gRPC server
registry and refreshes its workspace every 60 s (``DagsterDaemonController.check_workspace_freshness``), which
starts a new code server with a new ``server_id`` although no code changed; the next launch must still get the
waiting worker. A module the worker imported that changes on disk after it started (new code: what "Reload code
location" is for) must make the next launch start a fresh worker that runs the new code.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.controller import create_daemon_grpc_server_registry
from test_launcher import finished, one_node, wait_for

from maestro_dagster.executions import IN_PROCESS, create_execution
from maestro_dagster.launcher.launcher import TAG_LAUNCH, worker_alive
from maestro_dagster.mirror import live
from maestro_dagster.names import job_name
from maestro_dagster.tags import TAG_EXECUTION_ID, TAG_TRIGGER, TAG_WORKFLOW_ID

ROOT = Path(__file__).resolve().parents[2]
LOCATION = REPOSITORY = "maestro"


def waiting_worker(launcher, timeout: float = 120):
    """The launcher's waiting worker, once its process runs the worker module."""
    worker = wait_for(lambda: launcher._warm and launcher._warm[0], timeout, "a warm worker to be started")
    wait_for(lambda: worker_alive(worker.pid), timeout, f"worker {worker.pid} to exec")
    return worker


def launch_messages(env, run_id: str) -> list[str]:
    return [e.message for e in env.instance.all_logs(run_id) if e.message and "Maestro run worker" in e.message]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_launch_after_the_daemons_code_server_refresh_gets_the_warm_worker(maestro_env):
    maestro_env.add_definition(one_node("reuse_refresh", "echo"))
    instance, launcher = maestro_env.instance, maestro_env.instance.run_launcher
    target = ModuleTarget(
        module_name="maestro_dagster.definitions", attribute=REPOSITORY, working_directory=str(ROOT),
        location_name=LOCATION,
    )  # fmt: skip
    # What dagster-daemon builds (daemon_controller_from_instance): a gRPC server registry and a workspace on it.
    with (
        create_daemon_grpc_server_registry(instance) as registry,
        WorkspaceProcessContext(instance, target, grpc_server_registry=registry) as workspace,
    ):

        def launch_through(request) -> str:
            """A run as the webserver creates it (origins from the code server), launched as the daemon does."""
            execution_id, _spec = create_execution(maestro_env.settings, "reuse_refresh", {}, "test")
            remote_job = (
                request.get_code_location(LOCATION).get_repository(REPOSITORY).get_full_job(job_name("reuse_refresh"))
            )
            recon = ReconstructableRepository.for_module(
                "maestro_dagster.definitions", REPOSITORY, working_directory=str(ROOT)
            ).get_reconstructable_job(job_name("reuse_refresh"))
            run = instance.create_run_for_job(
                job_def=recon.get_definition(),
                run_config={"execution": IN_PROCESS},
                tags={TAG_EXECUTION_ID: execution_id, TAG_TRIGGER: "test", TAG_WORKFLOW_ID: "reuse_refresh"},
                remote_job_origin=remote_job.get_remote_origin(),
                job_code_origin=remote_job.get_python_origin(),
            )
            instance.launch_run(run.run_id, workspace=request)
            return run.run_id

        try:
            first_request = workspace.create_request_context()
            first_server = first_request.get_code_location(LOCATION).server_id
            first = launch_through(first_request)
            assert finished(maestro_env, first).status.value == "SUCCESS"
            worker = waiting_worker(launcher)

            # The daemon's refresh (DagsterDaemonController.check_workspace_freshness, every 60 s): no code changed.
            registry.clear_all_grpc_endpoints()
            workspace.refresh_workspace()
            second_request = workspace.create_request_context()
            assert second_request.get_code_location(LOCATION).server_id != first_server  # a new code server

            second = launch_through(second_request)
            run = finished(maestro_env, second)
            assert run.status.value == "SUCCESS"
            assert run.tags[TAG_LAUNCH] == "warm", launch_messages(maestro_env, second)
            assert run.tags[live.TAG_WORKER_PID] == str(worker.pid)
        finally:
            launcher.dispose()


PROBE_MODULE = "maestro_probe_location"
PROBE_SOURCE = """\"\"\"A test's code location: Maestro's repository, and a log line naming this code's version.\"\"\"
import os

from maestro_dagster.definitions import maestro  # noqa: F401

VERSION = {version!r}
with open(os.environ["MAESTRO_PROBE_LOG"], "a") as log:
    log.write(f"{{os.getpid()}} {{VERSION}}\\n")
"""


def versions_by_pid(log: Path) -> dict[int, list[str]]:
    seen: dict[int, list[str]] = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        pid, version = line.split()
        seen.setdefault(int(pid), []).append(version)
    return seen


@pytest.mark.parametrize("backend", ["sqlite"])
def test_changed_code_is_never_run_by_a_warm_worker(maestro_env, tmp_path, monkeypatch: pytest.MonkeyPatch):
    location_dir, probe_log = tmp_path / "location", tmp_path / "probe.log"
    location_dir.mkdir()
    module_file = location_dir / f"{PROBE_MODULE}.py"
    module_file.write_text(PROBE_SOURCE.format(version="v1"))
    monkeypatch.setenv("MAESTRO_PROBE_LOG", str(probe_log))
    monkeypatch.syspath_prepend(str(location_dir))
    maestro_env.add_definition(one_node("reuse_code", "echo"))
    launcher = maestro_env.instance.run_launcher
    recon_repo = ReconstructableRepository.for_module(PROBE_MODULE, REPOSITORY, working_directory=str(location_dir))

    def launch_probe() -> str:
        execution_id, _spec = create_execution(maestro_env.settings, "reuse_code", {}, "test")
        recon = recon_repo.get_reconstructable_job(job_name("reuse_code"))
        run = maestro_env.instance.create_run_for_job(
            job_def=recon.get_definition(),
            run_config={"execution": IN_PROCESS},
            tags={TAG_EXECUTION_ID: execution_id, TAG_TRIGGER: "test", TAG_WORKFLOW_ID: "reuse_code"},
            job_code_origin=recon.get_python_origin(),
        )
        maestro_env.instance.launch_run(run.run_id, workspace=None)
        return run.run_id

    try:
        first = launch_probe()
        assert finished(maestro_env, first).status.value == "SUCCESS"
        worker = waiting_worker(launcher)
        wait_for(lambda: versions_by_pid(probe_log).get(worker.pid), 120, f"worker {worker.pid} to import v1")
        assert versions_by_pid(probe_log)[worker.pid] == ["v1"]

        module_file.write_text(PROBE_SOURCE.format(version="v2"))  # new code, after the worker imported v1
        # A worker started within the clock slack after a change counts as stale too (file times are coarse): let
        # the slack pass, so that the worker started after this launch holds v2 and is seen to.
        changed_at = time.monotonic()
        wait_for(lambda: time.monotonic() - changed_at > 1.0, 5, "the clock slack to pass", interval=0.05)
        second = launch_probe()
        run = finished(maestro_env, second)
        assert run.status.value == "SUCCESS"
        pid = int(run.tags[live.TAG_WORKER_PID])
        assert versions_by_pid(probe_log).get(pid) == ["v2"], (pid, versions_by_pid(probe_log), worker.pid)
        assert run.tags[TAG_LAUNCH] == "cold"
        (message,) = launch_messages(maestro_env, second)
        assert "changed on disk since it started" in message, message  # naming the files (and any other's edit)
        wait_for(lambda: worker.proc.poll() is not None, 60, "the stale worker to be let go")

        # The worker started after the change holds v2: the next launch is warm again.
        fresh = waiting_worker(launcher)
        third = launch_probe()
        run = finished(maestro_env, third)
        assert run.tags[TAG_LAUNCH] == "warm" and run.tags[live.TAG_WORKER_PID] == str(fresh.pid)
        assert versions_by_pid(probe_log)[fresh.pid] == ["v2"]
    finally:
        launcher.dispose()


def test_changed_files_names_what_changed_after_the_worker_started(tmp_path):
    from maestro_dagster.launcher.freshness import CLOCK_SLACK_NS, changed_files, loaded_files

    kept, edited, removed = (tmp_path / f"{n}.py" for n in ("kept", "edited", "removed"))
    for path in (kept, edited, removed):
        path.write_text("x = 1\n")
    past = time.time_ns() - 10 * CLOCK_SLACK_NS
    for path in (kept, edited, removed):
        os.utime(path, ns=(past, past))
    modules = [type(sys)(p.stem) for p in (kept, edited, removed)]
    for module, path in zip(modules, (kept, edited, removed), strict=True):
        module.__file__ = str(path)
    files = loaded_files(modules)
    assert set(files) == {str(kept), str(edited), str(removed)}
    # ctime cannot be set back: a file written just now is "changed after a start" until the clock slack passes.
    started = max(os.stat(p).st_ctime_ns for p in (kept, edited, removed)) + CLOCK_SLACK_NS + 1
    assert changed_files(files, started) == []
    edited.write_text("x = 2\n")
    os.utime(edited, ns=(past, past))  # even with its old mtime put back (cp -p, rsync -t): ctime and size moved
    removed.unlink()
    assert changed_files(files, started) == [str(edited), str(removed)]
    assert loaded_files([type(sys)("no_file"), *modules[:1]]) == {str(kept): files[str(kept)]}
