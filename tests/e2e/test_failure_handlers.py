"""Failure handlers through a real Dagster instance (SQLite and PostgreSQL): ``on_failure`` nodes run after a
failure (told the failed node and its error) or a cancel, ``finally`` nodes always, in the same execution with
node states of their own; the execution keeps the first error (a cancelled one stays cancelled); ``mirror verify``
finds no difference."""

from __future__ import annotations

import os
import signal

from _defs import chain, definition, echo, node
from _mirror_support import maestro_cli, nodes, runs, wait_while_running
from dagster import DagsterRunStatus
from sqlalchemy import select

from maestro_dagster.db.models import NodeState, WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.mirror.live import TAG_WORKER_PID
from maestro_dagster.states import NodeStatus, WorkflowStatus


def _handled(workflow_id: str, middle: dict, **handlers) -> dict:
    nodes = {"first": echo(output={"rows": 1}), "middle": middle, "last": echo()}
    raw = definition(workflow_id, nodes, chain("first", "middle", "last"))
    raw["on_failure"] = handlers.get("on_failure", {"alert": echo(output={"alerted": True})})
    raw["finally"] = handlers.get("final", {"cleanup": echo(output={"cleaned": True})})
    return raw


def _rows(settings, execution_id: str) -> tuple[WorkflowExecution, dict[str, NodeState]]:
    with get_db(settings) as session:
        execution = session.get(WorkflowExecution, execution_id)
        states = session.scalars(select(NodeState).where(NodeState.execution_id == execution_id)).all()
        session.expunge_all()
        return execution, {s.node_id: s for s in states}


def _execution_id(settings, workflow_id: str) -> str:
    with get_db(settings) as session:
        row = session.scalars(select(WorkflowExecution).where(WorkflowExecution.workflow_id == workflow_id)).one()
        return row.id


def test_a_failed_node_runs_on_failure_then_finally_and_keeps_its_error(maestro_env):
    maestro_env.add_definition(_handled("fh_fail", node("fail", config={"message": "middle broke"})))
    result = maestro_env.run("fh_fail", in_process=False)
    assert not result.success
    execution_id = _execution_id(maestro_env.settings, "fh_fail")
    execution, states = _rows(maestro_env.settings, execution_id)
    assert execution.status is WorkflowStatus.FAILED
    assert (execution.error_node_id, execution.error_message) == ("middle", "middle broke")
    assert states["middle"].status is NodeStatus.FAILED
    assert states["last"].status is NodeStatus.BLOCKED
    alert, cleanup = states["alert"], states["cleanup"]
    assert (alert.status, alert.node_type) == (NodeStatus.COMPLETED, "on_failure")
    assert alert.outputs["failure"]["status"] == "failed"
    assert alert.outputs["failure"]["failed_nodes"] == [
        {"node_id": "middle", "error": "middle broke", "error_type": "RuntimeError"}
    ]
    assert (cleanup.status, cleanup.node_type) == (NodeStatus.COMPLETED, "finally")
    assert cleanup.outputs["failure"]["status"] == "failed"
    assert alert.started_at >= states["middle"].completed_at
    assert cleanup.started_at >= alert.completed_at
    assert execution.total_nodes == 5
    assert maestro_env.verify(execution_id) == []


def test_a_succeeding_execution_skips_on_failure_and_runs_finally(maestro_env):
    maestro_env.add_definition(_handled("fh_ok", echo()))
    result = maestro_env.run("fh_ok", in_process=False)
    assert result.success
    execution_id = _execution_id(maestro_env.settings, "fh_ok")
    execution, states = _rows(maestro_env.settings, execution_id)
    assert execution.status is WorkflowStatus.COMPLETED
    assert states["alert"].status is NodeStatus.SKIPPED
    assert states["cleanup"].status is NodeStatus.COMPLETED
    assert states["cleanup"].outputs["failure"] == {
        "status": "completed",
        "run_id": states["cleanup"].outputs["failure"]["run_id"],
        "failed_nodes": [],
    }
    assert maestro_env.verify(execution_id) == []


def test_a_failing_handler_is_recorded_and_the_first_error_kept(maestro_env):
    raw = _handled(
        "fh_bad_handler",
        node("fail", config={"message": "middle broke"}),
        on_failure={"alert": node("fail", config={"message": "the pager is down"})},
    )
    maestro_env.add_definition(raw)
    assert not maestro_env.run("fh_bad_handler", in_process=False).success
    execution_id = _execution_id(maestro_env.settings, "fh_bad_handler")
    execution, states = _rows(maestro_env.settings, execution_id)
    assert execution.status is WorkflowStatus.FAILED
    assert (execution.error_node_id, execution.error_message) == ("middle", "middle broke")
    assert (states["alert"].status, states["alert"].error_message) == (NodeStatus.FAILED, "the pager is down")
    assert states["cleanup"].status is NodeStatus.COMPLETED  # finally runs after a failed handler too
    assert maestro_env.verify(execution_id) == []


def test_a_failing_finally_fails_a_succeeding_execution(maestro_env):
    raw = _handled("fh_bad_finally", echo(), final={"cleanup": node("fail", config={"message": "disk full"})})
    maestro_env.add_definition(raw)
    assert not maestro_env.run("fh_bad_finally", in_process=False).success
    execution_id = _execution_id(maestro_env.settings, "fh_bad_finally")
    execution, states = _rows(maestro_env.settings, execution_id)
    assert (execution.status, execution.error_node_id) == (WorkflowStatus.FAILED, "cleanup")
    assert execution.error_message == "disk full"
    assert states["alert"].status is NodeStatus.SKIPPED
    assert maestro_env.verify(execution_id) == []


def test_a_cancelled_execution_runs_on_failure_then_finally_and_stays_cancelled(maestro_env):
    """The cancel of the Dagster UI or the API: the run is marked CANCELING and its orchestrating process
    interrupted (what Dagster's run worker server does; ``maestro run`` has none, as in test_mirror_cancel)."""
    maestro_env.add_definition(_handled("fh_cancel", node("sleep", config={"seconds": 120})))
    settings, instance = maestro_env.settings, maestro_env.instance
    proc = maestro_cli(maestro_env, "run", "fh_cancel")
    try:

        def middle_running() -> bool:
            execution_id = _first_execution_id(settings, "fh_cancel")
            return execution_id is not None and nodes(settings, execution_id)["middle"].status is NodeStatus.RUNNING

        wait_while_running(proc, middle_running, "'middle' running")
        execution_id = _execution_id(settings, "fh_cancel")
        (run_row,) = runs(settings, execution_id)
        run = instance.get_run_by_id(run_row.run_id)
        instance.report_run_canceling(run)
        os.kill(int(run.tags[TAG_WORKER_PID]), signal.SIGINT)
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, output
    assert instance.get_run_by_id(run_row.run_id).status == DagsterRunStatus.CANCELED
    execution, states = _rows(settings, execution_id)
    assert execution.status is WorkflowStatus.CANCELLED
    assert states["middle"].status is NodeStatus.FAILED and states["last"].status is NodeStatus.BLOCKED
    alert, cleanup = states["alert"], states["cleanup"]
    assert alert.status is NodeStatus.COMPLETED and alert.outputs["failure"]["status"] == "cancelled"
    assert cleanup.status is NodeStatus.COMPLETED and cleanup.outputs["failure"]["status"] == "cancelled"
    assert alert.started_at >= states["middle"].completed_at and cleanup.started_at >= alert.completed_at
    assert maestro_env.verify(execution_id) == []


def _first_execution_id(settings, workflow_id: str) -> str | None:
    with get_db(settings) as session:
        return session.scalars(select(WorkflowExecution.id).where(WorkflowExecution.workflow_id == workflow_id)).first()
