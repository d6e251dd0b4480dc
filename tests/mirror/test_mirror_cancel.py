"""Cancelling a run: Dagster's own termination (mark the run CANCELING, interrupt its process), mirrored.

A run started by ``maestro run`` / ``dagster job execute`` has no gRPC server to send Dagster's termination
request to (``DefaultRunLauncher.terminate`` reports it CANCELING and gives up), so the test does what that
server would do: interrupt the process that orchestrates the run, found through the ``maestro/worker_pid``
tag the mirror writes. The run ends ``CANCELED`` in Dagster and ``cancelled`` in the tables.
"""

from __future__ import annotations

import os
import signal

from _defs import definition, node
from _mirror_support import assert_event_order, events, execution, maestro_cli, nodes, runs, types, wait_while_running
from dagster import DagsterRunStatus
from sqlalchemy import select

from maestro_dagster.db.models import WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.mirror.live import TAG_WORKER_PID

CANCEL_FLOW = definition(
    "cancel_flow",
    {"a": node(), "long": node("sleep", config={"seconds": 60}), "after": node()},
    [("a", "long"), ("long", "after")],
)


def _execution_id(settings, workflow_id: str) -> str | None:
    with get_db(settings) as session:
        return session.scalars(select(WorkflowExecution.id).where(WorkflowExecution.workflow_id == workflow_id)).first()


def test_cancelled_run_is_mirrored_as_cancelled(maestro_env):
    maestro_env.add_definition(CANCEL_FLOW)
    settings, instance = maestro_env.settings, maestro_env.instance
    proc = maestro_cli(maestro_env, "run", "cancel_flow", "--in-process")
    try:
        execution_id = wait_while_running(
            proc, lambda: _execution_id(settings, "cancel_flow"), "the execution row", timeout=60
        )
        wait_while_running(
            proc, lambda: nodes(settings, execution_id)["long"].status.value == "running", "'long' running", timeout=60
        )
        (run_row,) = runs(settings, execution_id)
        run = instance.get_run_by_id(run_row.run_id)
        assert run.status == DagsterRunStatus.STARTED
        instance.report_run_canceling(run)
        os.kill(int(run.tags[TAG_WORKER_PID]), signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, output

    assert instance.get_run_by_id(run_row.run_id).status == DagsterRunStatus.CANCELED
    ex = execution(settings, execution_id)
    assert ex.status.value == "cancelled" and ex.completed_at is not None
    states = nodes(settings, execution_id)
    assert not [n for n, s in states.items() if s.status.value in ("running", "pending")]
    assert states["a"].status.value == "completed"
    assert states["long"].status.value == "failed" and states["long"].attempt_count == 1
    assert states["after"].status.value == "blocked"
    (run_row,) = runs(settings, execution_id)
    assert (run_row.status.value, run_row.dagster_status, run_row.mirror_complete) == ("cancelled", "CANCELED", True)

    evs = events(settings, execution_id)
    assert_event_order(evs)
    assert types(evs) == ["workflow_started", "workflow_cancelled"]
    assert evs[-1].event_type.value == "workflow_cancelled"
    assert types(evs, "long") == ["node_started", "node_failed"]
    assert types(evs, "after") == ["node_blocked"]
    assert maestro_env.verify(execution_id) == []
