"""``on_limit: skip`` held across processes on both storages (SQLite: a file lock in ``DAGSTER_HOME``; PostgreSQL:
an advisory lock): 5 processes submit a run each of a workflow with ``concurrency: {limit: 2, on_limit: skip}``
at the same moment, through the real ``MaestroRunCoordinator`` of ``dagster.yaml``. Exactly 2 are queued; the 3
others are cancelled with a ``workflow_skipped`` event and "skipped: ..." as their execution's error, and
``mirror verify`` finds no difference in any of them."""

from __future__ import annotations

import subprocess
import sys
import time

from _defs import definition, node
from _mirror_support import cli_env, events, execution
from dagster import DagsterRunStatus
from test_execution_tags import untagged_run

from maestro_dagster.mirror import sync_runs
from maestro_dagster.tags import execution_id_of_run

SUBMITTERS = 5
SUBMIT = """
import pathlib, sys, time
from maestro_dagster.instance import get_instance
from maestro_dagster.settings import get_settings
run_id, ready, go = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
instance = get_instance(get_settings())
instance.get_run_by_id(run_id)  # storage opened before the start signal
ready.touch()
deadline = time.monotonic() + 300
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.005)
instance.submit_run(run_id, workspace=None)
instance.dispose()
"""


def test_five_simultaneous_submits_from_five_processes_queue_two_and_skip_three(maestro_env, tmp_path):
    raw = definition("skip_race", {"only": node("echo")}, concurrency={"limit": 2, "on_limit": "skip"})
    maestro_env.add_definition(raw)
    instance = maestro_env.instance
    run_ids = [untagged_run(maestro_env, "skip_race").run_id for _ in range(SUBMITTERS)]
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SUBMIT, run_id, str(tmp_path / f"ready{i}"), str(go)],
            env=cli_env(maestro_env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i, run_id in enumerate(run_ids)
    ]
    try:
        deadline = time.monotonic() + 300
        while not all((tmp_path / f"ready{i}").exists() for i in range(SUBMITTERS)):
            assert time.monotonic() < deadline, "the submitting processes never got ready"
            assert all(p.poll() is None for p in procs), [p.communicate()[0] for p in procs if p.poll() is not None]
            time.sleep(0.05)
        go.touch()
        outputs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0] * SUBMITTERS, outputs

    statuses = sorted(instance.get_run_by_id(r).status.value for r in run_ids)
    assert statuses == ["CANCELED"] * 3 + ["QUEUED"] * 2
    sync_runs(instance, run_ids=run_ids)
    skipped = [r for r in run_ids if instance.get_run_by_id(r).status == DagsterRunStatus.CANCELED]
    for run_id in skipped:
        execution_id = execution_id_of_run(instance, instance.get_run_by_id(run_id))
        row = execution(maestro_env.settings, execution_id)
        assert row.status.value == "cancelled"
        assert row.error_message == "skipped: workflow 'skip_race' reached its concurrency limit 2 (on_limit: skip)"
        assert "workflow_skipped" in [e.event_type.value for e in events(maestro_env.settings, execution_id)]
        assert maestro_env.verify(execution_id) == []
