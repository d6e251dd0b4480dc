"""The warm run worker in real use: a real webserver and daemon, launches through GraphQL as the Dagster UI does.

- A launch after the daemon has replaced its code server (it does every 60 s, whether or not code changed: a new
  ``server_id``) gets the waiting worker (``maestro/launch`` = ``warm``): before, it started a cold one.
- After the code location's code changes on disk and "Reload code location", the next run starts in a fresh
  (cold) worker that imported the new code; no warm worker runs the old code.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from _e2e_home import pointed_at
from _e2e_procs import wait_for
from _procs import serving
from _warm_stack import ProbeStack
from dagster import DagsterRunStatus

from maestro_dagster.launcher.launcher import TAG_LAUNCH, TAG_WORKER_PID

pytestmark = pytest.mark.e2e
FINISHED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> Iterator[ProbeStack]:
    work = tmp_path_factory.mktemp("warm_worker")
    stack = ProbeStack(work, f"sqlite:///{work / 'maestro.db'}")
    with serving(stack, stack.start_servers, pytest.MonkeyPatch()):
        yield stack


@pytest.fixture
def warm(probe: ProbeStack, monkeypatch, request) -> Iterator[ProbeStack]:
    with pointed_at(probe, monkeypatch, request):
        yield probe


def run_to_end(stack: ProbeStack, run_id: str, timeout: float = 180):
    run = wait_for(lambda: (r := stack.run(run_id)) is not None and r.status in FINISHED and r, timeout,
                   f"run {run_id} to end", interval=0.5)  # fmt: skip
    assert run.status == DagsterRunStatus.SUCCESS, (run.status, stack.launch_messages(run_id))
    return run


def a_worker_waits(stack: ProbeStack, version: str, timeout: float = 180) -> int:
    """The daemon's one run worker without a run, once it has imported ``version`` of the code (and any worker the
    launcher let go has exited: with ``warm_workers: 1`` the one left is the one the next launch gets)."""

    def waiting() -> int | None:
        busy = {int(r.tags[TAG_WORKER_PID]) for r in stack.instance.get_runs() if TAG_WORKER_PID in r.tags}
        idle = stack.daemon_workers() - busy
        return next(iter(idle)) if len(idle) == 1 and stack.versions().get(next(iter(idle))) == [version] else None

    return wait_for(waiting, timeout, f"one idle run worker of the daemon holding {version}", interval=0.5)


def test_a_launch_after_the_daemon_replaced_its_code_server_is_warm(warm: ProbeStack):
    run_to_end(warm, warm.launch("e2e_flow", {"case": "before the pause"}))
    waiting = a_worker_waits(warm, "v1")
    paused = time.monotonic()
    new_servers = warm.wait_daemon_swap()
    print(f"the daemon replaced its code server after {time.monotonic() - paused:.0f}s: now pid(s) {new_servers}")

    run_id = warm.launch("e2e_flow", {"case": "after the pause"})
    run = run_to_end(warm, run_id)
    print(f"launch after the pause: {run.tags[TAG_LAUNCH]}; {warm.launch_messages(run_id)}")
    assert run.tags[TAG_LAUNCH] == "warm", warm.launch_messages(run_id)
    assert run.tags[TAG_WORKER_PID] == str(waiting)


def test_changed_code_and_reload_start_a_fresh_worker_with_the_new_code(warm: ProbeStack):
    # Right after the daemon moved to a new code server, so that its next refresh (about 40 s after the old server
    # exits) comes after this test's launches: the waiting worker below is started while the daemon uses the code
    # server it launches with next, as before the fix a warm worker with the old code would have been.
    warm.wait_daemon_swap()
    servers = warm.daemon_code_servers()
    first = warm.launch("e2e_flow", {"case": "old code"}, **IN_PROCESS)  # its hand-off starts the next worker
    wait_for(lambda: TAG_WORKER_PID in warm.run(first).tags, 60, f"run {first} to get its worker", interval=0.2)
    old = a_worker_waits(warm, "v1")

    warm.write_code("v2")
    changed = time.monotonic()
    warm.reload_location()
    wait_for(lambda: time.monotonic() - changed > 1.0, 5, "the launcher's clock slack to pass", interval=0.05)
    run_id = warm.launch("e2e_flow", {"case": "new code"}, **IN_PROCESS)
    run = run_to_end(warm, run_id)
    refreshed = warm.daemon_code_servers() != servers
    pid = int(run.tags[TAG_WORKER_PID])
    print(f"launch after the change: {run.tags[TAG_LAUNCH]} in {pid}; {warm.launch_messages(run_id)}; "
          f"a daemon refresh began meanwhile: {refreshed}")  # fmt: skip
    assert warm.versions().get(pid) == ["v2"], (pid, old, warm.versions())
    assert run.tags[TAG_LAUNCH] == "cold"
    assert any("changed on disk since it started" in m for m in warm.launch_messages(run_id))
    run_to_end(warm, first)

    a_worker_waits(warm, "v2")  # the next worker holds the new code: warm again
    run = run_to_end(warm, warm.launch("e2e_flow", {"case": "new code, warm"}, **IN_PROCESS))
    assert run.tags[TAG_LAUNCH] == "warm" and warm.versions()[int(run.tags[TAG_WORKER_PID])] == ["v2"]
