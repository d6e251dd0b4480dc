"""Partitioned schedules on a real dagster-webserver + dagster-daemon (issue 17, point 6), SQLite and PostgreSQL.

``maestro backfill --max-concurrent 2`` (the CLI as a subprocess, through the webserver; the daemon dequeues the
runs) runs exactly the 3 windows asked for, one mirrored execution each with its partition columns, completed and
verified, never more than 2 of them in progress at once (Dagster's run storage sampled all along, ``RunSampler``).

Catch-up after enabling: a daily partitioned schedule, ``catchup: true``, ``enabled: true``, ``start_date`` 3 days
back. Dagster's scheduler only evaluates the cron ticks that come after it first sees a running schedule (no tick
of the past), so a ``0 0 * * *`` schedule would not tick before midnight. The test's cron is still a daily one,
``M H * * *`` at a minute a little ahead of now (UTC): its partitions are daily windows keyed by date (Dagster's
``DailyPartitionsDefinition`` with a minute/hour offset is the same), and its first tick comes within the test's
time. That tick runs the 3 windows that have ended since ``start_date`` (the latest one and the 2 missed ones).

The two workflows are added to the running stack (definition files synced, the webserver's location reloaded; the
daemon moves to a code server that has them at its next workspace refresh, every 60 s), once per stack, so the
schedule's tick comes while the backfill test runs.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from _defs import chain, definition, echo, node
from _e2e_home import BIN, LOCATION, REPOSITORY, Stack
from _e2e_procs import ROOT, wait_for
from _mirror_support import RunSampler
from dagster import RunsFilter
from sqlalchemy import select

from maestro_dagster.db.models import WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.executions.gateway import DagsterGateway
from maestro_dagster.mirror.verify import verify_execution
from maestro_dagster.spec.partitions import PARTITION_TAG
from maestro_dagster.states import WorkflowStatus
from maestro_dagster.tags import TAG_BACKFILL, TAG_WORKFLOW_ID

# a catch-up that misses its first tick waits for a second one: more than pytest's 600 s default in the worst case
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]
BACKFILLED = "e2e_part_backfill"
CAUGHT_UP = "e2e_part_catchup"
SCHEDULE = f"{CAUGHT_UP}__schedule_daily"  # triggers.build.schedule_name
TICK_MARGIN = timedelta(seconds=150)  # time for the daemon's workspace refresh (60 s) and a code server's load
JOBS_QUERY = """
query Jobs($selector: RepositorySelector!) { repositoryOrError(repositorySelector: $selector) { __typename
  ... on Repository { jobs { name } schedules { name } } } }
"""


def _partitioned(workflow_id: str, schedule: dict[str, Any]) -> dict[str, Any]:
    nodes = {"nap": node("sleep", config={"seconds": 3}), "after": echo()}
    fields = {"name": "daily", "partitioned": True, "timezone": "UTC", **schedule}
    return definition(workflow_id, nodes, chain(*nodes), schedules=[fields])


def _backfilled() -> dict[str, Any]:
    return _partitioned(BACKFILLED, {"cron": "0 0 * * *", "start_date": "2026-11-01", "enabled": False})


@dataclass(frozen=True)
class Armed:
    """The catch-up schedule as last written: its first tick and the windows that tick runs."""

    tick: datetime

    @property
    def keys(self) -> list[str]:
        return [(self.tick - timedelta(days=n)).date().isoformat() for n in (3, 2, 1)]


def _caught_up(tick: datetime) -> dict[str, Any]:
    start = (tick - timedelta(days=3)).date().isoformat()
    cron = f"{tick.minute} {tick.hour} * * *"  # daily, at a fixed minute: windows keyed by date
    return _partitioned(CAUGHT_UP, {"cron": cron, "start_date": start, "catchup": True, "enabled": True})


def _served(stack: Stack) -> tuple[set[str], set[str]]:
    selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
    data = stack.graphql(JOBS_QUERY, {"selector": selector})["repositoryOrError"]
    return {j["name"] for j in data.get("jobs", [])}, {s["name"] for s in data.get("schedules", [])}


def _publish(stack: Stack, *raws: dict[str, Any]) -> None:
    """Write the definitions into the stack's defs dir, sync them, reload the webserver's location."""
    for raw in raws:
        (stack.defs_dir / f"{raw['id']}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    done = stack.maestro("defs", "sync")
    assert done.returncode == 0, done.stdout + done.stderr
    DagsterGateway(stack.url).reload_location()
    wait_for(
        lambda: {r["id"] for r in raws} <= _served(stack)[0] and SCHEDULE in _served(stack)[1],
        300,
        "the webserver to serve the partitioned jobs",
        interval=0.5,
    )


def _arm(stack: Stack, *others: dict[str, Any]) -> Armed:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    armed = Armed(now + timedelta(minutes=1) + TICK_MARGIN // timedelta(minutes=1) * timedelta(minutes=1))
    _publish(stack, _caught_up(armed.tick), *others)
    print(f"{SCHEDULE}: first tick at {armed.tick:%H:%M} UTC, windows {armed.keys}")
    return armed


@pytest.fixture(scope="module")
def armed(stack: Stack) -> Iterator[list[Armed]]:
    """Both workflows added to this stack; the catch-up schedule's tick a few minutes ahead (a list: re-armed if
    the daemon saw the schedule only after that tick)."""
    yield [_arm(stack, _backfilled())]


# ---- helpers ------------------------------------------------------------------------------------------------------


def _executions(workflow_id: str) -> list[WorkflowExecution]:
    with get_db() as session:
        rows = session.scalars(select(WorkflowExecution).where(WorkflowExecution.workflow_id == workflow_id))
        return sorted(rows, key=lambda e: e.partition_key or "")


def _completed(stack: Stack, workflow_id: str, keys: list[str], timeout: float) -> list[WorkflowExecution]:
    """Until the workflow has one execution per key, each completed and its runs completely mirrored."""

    def check() -> list[WorkflowExecution] | None:
        rows = _executions(workflow_id)
        for row in rows:
            if row.status in (WorkflowStatus.FAILED, WorkflowStatus.CANCELLED):
                raise AssertionError(f"{row.id} ({row.partition_key}) ended {row.status.value}: {row.error_message}")
        done = [r for r in rows if r.status is WorkflowStatus.COMPLETED]
        if sorted(r.partition_key or "" for r in done) != keys:
            return None
        runs = [run for r in done for run in stack.runs(r.id)]
        return done if runs and all(run.mirror_complete for run in runs) else None

    return wait_for(check, timeout, f"executions of {workflow_id} for {keys} to complete", interval=1.0)


def _check_windows(stack: Stack, rows: list[WorkflowExecution], keys: list[str], at: str, trigger: str) -> None:
    """One execution per window, its partition columns the window (``at`` the windows' time of day), the window in
    the nodes' context, and ``mirror verify`` clean."""
    assert [r.partition_key for r in rows] == keys
    for row, key in zip(rows, keys, strict=True):
        end = (datetime.fromisoformat(key) + timedelta(days=1)).date().isoformat()
        assert (row.partition_start, row.partition_end) == (f"{key}T{at}+00:00", f"{end}T{at}+00:00"), row.id
        assert row.execution_metadata["trigger"] == trigger
        assert row.initial_context["partition_key"] == key
        assert stack.nodes(row.id)["after"].outputs["global_context"]["partition_end"] == row.partition_end
        assert [r.status.value for r in stack.runs(row.id)] == ["completed"]
    with get_db() as session:
        for row in rows:
            assert verify_execution(session, stack.instance, row.id) == [], row.id


# ---- the tests ------------------------------------------------------------------------------------------------------


def test_backfill_through_the_webserver_runs_three_windows_two_at_a_time(e2e: Stack, armed: list[Armed]) -> None:
    keys = ["2026-11-02", "2026-11-03", "2026-11-04"]
    command = [str(BIN / "maestro"), "backfill", BACKFILLED, "--from", keys[0], "--to", keys[-1]]
    env = {**e2e.env, "MAESTRO_DAGSTER_URL": e2e.url}  # the stack's env, and its webserver for the command
    sampler = RunSampler(e2e.instance, {TAG_WORKFLOW_ID: BACKFILLED})  # Dagster's run storage, every 50 ms
    started = time.monotonic()
    try:
        done = subprocess.run(
            [*command, "--max-concurrent", "2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
        print(f"$ maestro backfill -> exit {done.returncode} in {time.monotonic() - started:.1f}s\n{done.stdout}")
        assert done.returncode == 0, done.stdout + done.stderr
        rows = _completed(e2e, BACKFILLED, keys, timeout=600)
    finally:
        most = sampler.stop()
    print(f"backfill ended in {time.monotonic() - started:.1f}s; at most {most} runs in progress at once")
    assert most <= 2, f"{most} runs of {BACKFILLED} were in progress at once"
    assert most == 2  # 2 at once, not one after the other

    printed = [line.split() for line in done.stdout.splitlines() if line.startswith("2026-")]
    assert [p[0] for p in printed] == keys
    assert {p[1] for p in printed} == {r.id for r in rows}  # the executions the command printed
    assert done.stdout.strip().endswith(f"3 window(s) of {BACKFILLED} launched")
    assert len(_executions(BACKFILLED)) == 3  # exactly the 3 windows, nothing else
    runs = e2e.instance.get_runs(RunsFilter(job_name=BACKFILLED))
    assert sorted(run.tags[PARTITION_TAG] for run in runs) == keys
    assert len({run.tags[TAG_BACKFILL] for run in runs}) == 1  # one backfill launched them
    _check_windows(e2e, rows, keys, "00:00:00", "backfill")


def _daemon_state(stack: Stack) -> Any:
    from dagster._core.scheduler.instigation import InstigatorType

    states = stack.instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
    return next((s for s in states if s.instigator_name == SCHEDULE), None)


def test_catchup_after_enabling_runs_the_missed_windows(e2e: Stack, armed: list[Armed]) -> None:
    started = time.monotonic()
    state = wait_for(lambda: _daemon_state(e2e), 300, f"the daemon to see {SCHEDULE} running", interval=1.0)
    seen = datetime.fromtimestamp(state.instigator_data.start_timestamp, UTC)
    print(f"the daemon saw {SCHEDULE} at {seen:%H:%M:%S} UTC ({time.monotonic() - started:.0f}s into the test)")
    if seen >= armed[-1].tick:  # it came too late for that tick (a loaded machine): a later one, in the future
        armed.append(_arm(e2e))
    keys = armed[-1].keys
    rows = _completed(e2e, CAUGHT_UP, keys, timeout=600)
    print(f"the catch-up tick's 3 windows completed {time.monotonic() - started:.0f}s into the test")
    tick = armed[-1].tick
    _check_windows(e2e, rows, keys, f"{tick:%H:%M}:00", "schedule")
    assert len(_executions(CAUGHT_UP)) == 3  # the one tick ran each window once
    runs = [e2e.run(r.run_id) for row in rows for r in e2e.runs(row.id)]
    assert sorted(run.tags[PARTITION_TAG] for run in runs) == keys
    assert {run.tags.get("dagster/schedule_name") for run in runs} == {SCHEDULE}
