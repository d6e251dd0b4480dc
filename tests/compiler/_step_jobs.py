"""A two-step job for tests/compiler/test_step_processes.py, rebuilt by name in each step process."""

from __future__ import annotations

import os
from pathlib import Path

from dagster import JobDefinition, job, multi_or_in_process_executor, op

from maestro_dagster.step_processes import with_forkserver_default

MARK_ENV = "MAESTRO_TEST_STEP_MARK"


def _proc(pid: int, name: str) -> str:
    return Path(f"/proc/{pid}/{name}").read_bytes().decode(errors="replace")


def _report() -> dict:
    """What a step sees: its pid, its parent's command line, the environment mark, a module-level global."""
    parent = os.getppid()
    state = _STEP_STATE.setdefault("touched_by", [])
    state.append(os.getpid())
    return {
        "pid": os.getpid(),
        "parent_cmdline": _proc(parent, "cmdline"),
        "mark": os.environ.get(MARK_ENV),
        "modules_file": os.environ.get("MAESTRO_STEP_SERVER_MODULES"),
        "touched_by": list(state),
    }


@op
def report_process() -> dict:
    return _report()


@op
def report_again(first: dict) -> dict:
    return {**_report(), "first": first}


_STEP_STATE: dict[str, list[int]] = {}


@job(executor_def=with_forkserver_default(multi_or_in_process_executor))
def two_steps() -> None:
    report_again(report_process())


def two_steps_job() -> JobDefinition:
    return two_steps
