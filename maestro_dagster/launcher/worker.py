"""The run worker process of ``MaestroRunLauncher``: ``python -m maestro_dagster.launcher.worker``.

It reads two lines on stdin. The first is the launcher's Dagster instance (a serialized ``InstanceRef``), the
module of the code location (``maestro_dagster.definitions``) and, optionally, a file descriptor: the process then
imports Dagster, opens the instance's storage, imports the code location and starts the forkserver its steps will
be forked from (``step_processes.py``), which is most of a run worker's start-up, and writes to that descriptor
(JSON, then closes it) the files of the modules it has imported (``freshness.loaded_files``), so the launcher can
tell whether its code is still the code on disk. The second line is the id of the run to execute, which it does
exactly as ``dagster api execute_run`` does (same engine events, same interrupt handling), plus Dagster's run-
cancellation thread so a terminate request reaches it from any process.
One run per process; the process exits when the run ends.

A warm worker is one started ahead of time that has done the first part and waits for the second line; if its
launcher goes away (stdin closes) before a run arrives, it exits. Stdout and stderr are the launcher's.

The launcher starts it without the API's secrets (``settings.API_SECRET_VARIABLES``); it drops any that reached it
anyway (started by hand) before it imports anything, so its step processes and nodes never see them.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from typing import Any

from maestro_dagster.launcher.freshness import loaded_files
from maestro_dagster.settings import drop_api_secrets


def _prepare(first_line: str) -> Any:
    """The instance, with Dagster, its storage and the code location imported (the slow part of a start)."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef
    from dagster._serdes import deserialize_value

    ref_json, module, report_fd = [*first_line.rstrip("\n").split("\t"), "", ""][:3]
    instance = DagsterInstance.from_ref(deserialize_value(ref_json, InstanceRef))
    import dagster._cli.api  # noqa: F401 - the run's code path, imported while waiting

    if module:
        importlib.import_module(module)
        _start_step_server()
    if report_fd.isdigit():
        _report(int(report_fd))
    return instance


def _start_step_server() -> None:
    """Start the forkserver the run's steps will be forked from (``step_processes``), with the modules imported so
    far preloaded, so that the first step of the run does not wait for it either."""
    from maestro_dagster.step_processes import start_step_server

    start_step_server()


def _report(fd: int) -> None:
    """Tell the launcher this worker is ready, and which files its code came from (see ``freshness``)."""
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(loaded_files(), out)
    except OSError:  # the launcher went away: the run id line will not come either
        pass


def _execute(instance: Any, run_id: str) -> int:
    from dagster._cli.api import _execute_run_command_body
    from dagster._core.execution.run_cancellation_thread import start_run_cancellation_thread
    from dagster._utils.interrupts import capture_interrupts

    with capture_interrupts():
        thread, shutdown = start_run_cancellation_thread(instance, run_id)
        try:
            return _execute_run_command_body(run_id, instance, lambda _event: None, set_exit_code_on_failure=True)
        finally:
            shutdown.set()
            thread.join(timeout=5)


def main() -> int:
    drop_api_secrets()
    first = sys.stdin.readline()
    if not first.strip():
        return 0
    instance = _prepare(first)
    run_id = sys.stdin.readline().strip()
    if not run_id:  # the launcher went away before giving this worker a run
        instance.dispose()
        return 0
    try:
        return _execute(instance, run_id)
    finally:
        instance.dispose()


if __name__ == "__main__":
    sys.exit(main())
