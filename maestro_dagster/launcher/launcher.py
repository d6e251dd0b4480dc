"""``MaestroRunLauncher``: Dagster's run launcher for Maestro jobs, with a warm run worker waiting.

Dagster's ``DefaultRunLauncher`` asks the code server to spawn a new Python process per run, which then imports
Dagster, opens the storage and loads the code location before the run starts: on a small machine most of two
seconds between the daemon's dequeue and ``RUN_START``. This launcher starts that process ahead of time: a worker
(``python -m maestro_dagster.launcher.worker``) that has done all of it and waits on stdin for a run id; a launch
hands the run to it and starts the next one. Everything else is Dagster's: the worker executes the run exactly as
``dagster api execute_run`` does (one process per run, the job's executor, events, interrupts).

- A warm worker serves runs of the code location it was started for (same Python executable, working directory
  and module) as long as its code is the code on disk: once ready, the worker reports the source file of every
  module it has imported (``worker.py``), and at hand-off any of them changed or gone since the worker started
  (``freshness.py``) lets it go and starts the run in a new (cold) worker instead, which is no slower than
  Dagster's. It is not tied to a code server: the daemon replaces its code servers every 60 s (a new
  ``server_id`` each time) without any change of code, and the webserver's "Reload code location" never reaches
  the daemon, so neither says whether a worker's code is current; the files do. A launch after any pause is warm.
  A launch that finds the waiting worker still importing waits for it (up to ``READY_TIMEOUT_SECONDS``), which is
  sooner than a new one; the engine event of a cold launch says why it was cold.
- Every Maestro run launched here carries ``maestro/execution_id`` (``tags.py``; the run coordinator adds it at
  submit already, this covers a run launched without the coordinator).
- Runs of jobs that are not Maestro workflows, or whose code location's Python is not on this host (a remote gRPC
  server), are launched by ``DefaultRunLauncher`` unchanged.
- The worker's pid and host are run tags. A worker that exits before its run ended has the run failed at once by
  the process that launched it; the daemon's run monitoring checks the pid too (``check_run_worker_health``), so
  a worker killed while its launcher was down is failed within ``poll_interval_seconds``.
- ``terminate`` marks the run canceling and interrupts the worker (SIGINT, as Dagster's code server does); from
  another host the worker's cancellation thread sees the status within ``cancellation_thread_poll_interval_seconds``.
- ``warm_workers: 0`` turns the warm worker off. A waiting worker holds no database connection; it exits when the
  process that started it exits (its stdin closes).
- A worker runs workflow definitions, which are untrusted: it starts with this process's environment minus the
  API's secrets (``settings.API_SECRET_VARIABLES``, e.g. ``MAESTRO_API_TOKENS``), so neither its step processes
  nor any node can read them, whichever process (daemon, webserver, API, CLI) launched the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster import Field, IntSource
from dagster._core.launcher import DefaultRunLauncher, LaunchRunContext
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._serdes import serialize_value
from dagster._serdes.config_class import ConfigurableClassData

from maestro_dagster.launcher.freshness import changed_files
from maestro_dagster.settings import without_api_secrets
from maestro_dagster.tags import (
    TAG_EXECUTION_ID,
    TAG_LAUNCH,
    TAG_WORKER_HOST,
    TAG_WORKER_PID,
    TAG_WORKFLOW_ID,
    missing_execution_tag,
)

__all__ = [
    "TAG_EXECUTION_ID",
    "TAG_LAUNCH",
    "TAG_WORKER_HOST",
    "TAG_WORKER_PID",
    "TAG_WORKFLOW_ID",
    "MaestroRunLauncher",
    "Target",
]

WORKER_MODULE = "maestro_dagster.launcher.worker"
READY_TIMEOUT_SECONDS = 180.0  # a launch waits this long for a warm worker still importing, then starts another


@dataclass(frozen=True)
class Target:
    """Where a run's worker must come from: its code location's Python, working directory and module."""

    executable: str
    working_directory: str
    module: str


@dataclass
class Worker:
    proc: subprocess.Popen
    target: Target
    started: float = field(default_factory=time.monotonic)
    started_ns: int = field(default_factory=time.time_ns)  # wall clock, before the process was started
    run_id: str | None = None
    ready: threading.Event = field(default_factory=threading.Event)  # its report arrived (or it never will)
    files: dict[str, list[int]] | None = None  # the report: its modules' files (``freshness.loaded_files``)

    @property
    def pid(self) -> int:
        return self.proc.pid


def pid_alive(pid: int) -> bool:
    """Does process ``pid`` exist on this host (one we may not signal counts)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_alive(pid: int) -> bool:
    """Is ``pid`` a live (not zombie) Maestro run worker? Without /proc, whether the pid exists."""
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            return state not in ("Z", "X") and WORKER_MODULE.encode() in (proc / "cmdline").read_bytes()
        except (OSError, IndexError):
            return False
    return pid_alive(pid)


class MaestroRunLauncher(DefaultRunLauncher):
    def __init__(self, inst_data: ConfigurableClassData | None = None, warm_workers: int = 1) -> None:
        super().__init__(inst_data=inst_data)
        if warm_workers < 0:
            raise ValueError(f"MaestroRunLauncher: warm_workers must be 0 or more, got {warm_workers}")
        self.warm_workers = warm_workers
        self._lock = threading.Lock()
        self._warm: list[Worker] = []

    @classmethod
    def config_type(cls) -> Mapping[str, Any]:
        return {
            "warm_workers": Field(
                IntSource,
                is_required=False,
                default_value=1,
                description="Run workers kept started and waiting for a run (0: start one per launch).",
            )
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]) -> MaestroRunLauncher:
        return cls(inst_data=inst_data, **config_value)

    # -- launching ------------------------------------------------------------------------------
    def target_of(self, run: DagsterRun) -> Target | None:
        """The worker a Maestro run needs, or None for a run this launcher leaves to ``DefaultRunLauncher``."""
        origin = run.job_code_origin
        if origin is None or not run.tags.get(TAG_WORKFLOW_ID) or not os.path.exists(origin.executable_path):
            return None
        pointer = origin.repository_origin.code_pointer
        return Target(
            executable=origin.executable_path,
            working_directory=getattr(pointer, "working_directory", None) or os.getcwd(),  # not on CustomPointer
            module=getattr(pointer, "module", "") or "",
        )

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        execution_tag = missing_execution_tag(self._instance, run)  # launched without the run coordinator
        target = self.target_of(run)
        if target is None:
            if execution_tag:
                self._instance.add_run_tags(run.run_id, execution_tag)
            super().launch_run(context)
            return
        worker, warm, why = self._take(target)
        worker.run_id = run.run_id
        self._instance.add_run_tags(
            run.run_id,
            {
                **execution_tag,
                TAG_WORKER_PID: str(worker.pid),
                TAG_WORKER_HOST: socket.gethostname(),
                TAG_LAUNCH: warm,
            },
        )
        assert worker.proc.stdin is not None
        worker.proc.stdin.write(run.run_id + "\n")
        worker.proc.stdin.close()
        self._run_ids.add(run.run_id)
        waited = f", ready for {time.monotonic() - worker.started:.1f}s" if warm == "warm" else f" ({why})"
        self._instance.report_engine_event(
            f"Launched run in {warm} Maestro run worker process {worker.pid}{waited}.", run, cls=self.__class__
        )
        if self.warm_workers:
            self._top_up(target)

    def _take(self, target: Target) -> tuple[Worker, str, str]:
        """A waiting worker for ``target`` whose code is current ("warm"), else a new one ("cold", and why)."""
        why = "no warm worker was waiting"
        while True:
            with self._lock:
                self._warm = [w for w in self._warm if w.proc.poll() is None]
                other = [w for w in self._warm if w.target != target]  # another code location, Python or directory
                self._warm = [w for w in self._warm if w.target == target]
                worker = self._warm.pop(0) if self._warm else None
            for stale in other:
                self._release(stale)
            if worker is None:
                return self._start(target), "cold", why
            if not worker.ready.wait(READY_TIMEOUT_SECONDS) or worker.files is None or worker.proc.poll() is not None:
                why = f"the waiting worker {worker.pid} never became ready"
            elif changed := changed_files(worker.files, worker.started_ns):
                files = ", ".join(changed)
                why = f"the waiting worker {worker.pid} was let go: {files} changed on disk since it started"
            else:
                return worker, "warm", ""
            self._release(worker)

    def _top_up(self, target: Target) -> None:
        with self._lock:
            missing = self.warm_workers - sum(1 for w in self._warm if w.target == target)
        for _ in range(missing):
            worker = self._start(target)
            with self._lock:
                self._warm.append(worker)

    def _start(self, target: Target) -> Worker:
        started_ns = time.time_ns()
        report_r, report_w = os.pipe()
        try:
            proc = subprocess.Popen(
                [target.executable, "-m", WORKER_MODULE],
                cwd=target.working_directory,
                stdin=subprocess.PIPE,
                text=True,
                env=without_api_secrets(),
                pass_fds=(report_w,),
                start_new_session=True,  # a run outlives a restart of the daemon that launched it, as Dagster's
            )
        except BaseException:
            os.close(report_r)
            raise
        finally:
            os.close(report_w)
        assert proc.stdin is not None
        proc.stdin.write(f"{serialize_value(self._instance.get_ref())}\t{target.module}\t{report_w}\n")
        proc.stdin.flush()
        worker = Worker(proc, target, started_ns=started_ns)
        name = f"maestro-worker-{proc.pid}"
        threading.Thread(target=self._read_report, args=(worker, report_r), name=f"{name}-ready", daemon=True).start()
        threading.Thread(target=self._reap, args=(worker,), name=name, daemon=True).start()
        return worker

    @staticmethod
    def _read_report(worker: Worker, fd: int) -> None:
        """The worker's report (see ``freshness``): its end of the pipe closes when it is ready, or when it exits."""
        try:
            with os.fdopen(fd, "rb") as report:
                data = report.read()
            worker.files = json.loads(data) if data else None
        except (OSError, ValueError):
            worker.files = None
        finally:
            worker.ready.set()

    def _reap(self, worker: Worker) -> None:
        """Wait for the worker's exit; a run it left unfinished is failed now (not after a monitoring poll)."""
        code = worker.proc.wait()
        if worker.run_id is None or not self.has_instance:
            return
        try:
            run = self._instance.get_run_by_id(worker.run_id)
            if run is not None and not run.is_finished:
                self._instance.report_run_failed(
                    run,
                    f"The Maestro run worker process {worker.pid} exited with code {code} before the run ended "
                    "(killed, or it could not start: its output is in the log of the process that launched it).",
                )
        except Exception:
            pass

    @staticmethod
    def _release(worker: Worker) -> None:
        if worker.proc.stdin is not None and not worker.proc.stdin.closed:
            with contextlib.suppress(OSError):
                worker.proc.stdin.close()  # a waiting worker exits when its stdin closes

    def dispose(self) -> None:
        with self._lock:
            warm, self._warm = self._warm, []
        for worker in warm:
            self._release(worker)
        super().dispose()

    # -- health and termination -----------------------------------------------------------------
    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        pid, host = run.tags.get(TAG_WORKER_PID), run.tags.get(TAG_WORKER_HOST)
        if not run.tags.get(TAG_LAUNCH) or not pid or not pid.isdigit():
            return CheckRunHealthResult(WorkerStatus.RUNNING, "not launched by MaestroRunLauncher: not checked")
        if host != socket.gethostname():
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"the worker runs on {host}: not checked from here")
        if worker_alive(int(pid)):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(WorkerStatus.FAILED, f"The Maestro run worker process {pid} on {host} is gone.")

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id) if self.has_instance else None
        if run is None or not run.tags.get(TAG_LAUNCH):
            return super().terminate(run_id)
        if run.is_finished:
            return False
        self._instance.report_run_canceling(run)
        pid = run.tags.get(TAG_WORKER_PID) or ""
        if run.tags.get(TAG_WORKER_HOST) == socket.gethostname() and pid.isdigit() and worker_alive(int(pid)):
            os.kill(int(pid), signal.SIGINT)  # Dagster's interrupt: the run ends CANCELED
        return True
