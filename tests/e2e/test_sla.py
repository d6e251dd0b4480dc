"""SLAs through a real Dagster instance (SQLite and PostgreSQL): the ``sla_missed`` row is in the tables while the
execution still runs, once per execution and node; ``on_miss: fail`` ends the execution failed with the reason;
``mirror verify`` finds no difference."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from _defs import chain, definition, node
from sqlalchemy import select

from maestro_dagster.api.queries import execution_status
from maestro_dagster.db.models import ExecutionEvent, WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.reporting.metrics import collect
from maestro_dagster.states import EventType, WorkflowStatus


@dataclass
class Seen:
    """The first ``sla_missed`` rows a watcher saw, with the execution's status at that moment."""

    rows: list[tuple[str | None, float]] = field(default_factory=list)
    status_then: WorkflowStatus | None = None
    api_then: list[tuple[str | None, float]] = field(default_factory=list)  # the status answer's sla_missed


def _watch(settings, workflow_id: str, stop: threading.Event, seen: Seen) -> None:
    while not stop.is_set():
        with get_db(settings) as session:
            execution = session.scalars(
                select(WorkflowExecution).where(WorkflowExecution.workflow_id == workflow_id)
            ).first()
            if execution is not None:
                rows = session.scalars(
                    select(ExecutionEvent).where(
                        ExecutionEvent.execution_id == execution.id, ExecutionEvent.event_type == EventType.SLA_MISSED
                    )
                ).all()
                if rows and not seen.rows:
                    seen.rows = [(r.node_id, r.data["limit_seconds"]) for r in rows]
                    seen.status_then = execution.status
                    answer = execution_status(session, execution.id)
                    seen.api_then = [(m.node_id, m.limit_seconds) for m in answer.sla_missed]
                    return
        stop.wait(0.1)


def _run_watched(maestro_env, workflow_id: str):
    stop, seen = threading.Event(), Seen()
    watcher = threading.Thread(target=_watch, args=(maestro_env.settings, workflow_id, stop, seen), daemon=True)
    watcher.start()
    try:
        result = maestro_env.run(workflow_id)
    finally:
        stop.set()
        watcher.join(timeout=30)
    return result, seen


def _sla_rows(settings, execution_id: str) -> list[ExecutionEvent]:
    with get_db(settings) as session:
        stmt = select(ExecutionEvent).where(
            ExecutionEvent.execution_id == execution_id, ExecutionEvent.event_type == EventType.SLA_MISSED
        )
        return list(session.scalars(stmt))


def test_a_node_sla_warns_while_the_node_still_runs(maestro_env):
    nodes = {
        "slow": node("sleep", config={"seconds": 6}, sla={"max_duration_seconds": 1}),
        "after": node("echo", config={"output": {"ok": True}}),
    }
    maestro_env.add_definition(definition("sla_warn", nodes, chain("slow", "after")))
    started = time.monotonic()
    result, seen = _run_watched(maestro_env, "sla_warn")
    assert result.success
    assert time.monotonic() - started >= 6
    assert seen.rows == [("slow", 1.0)], "the sla_missed row was in the tables while the execution ran"
    assert seen.status_then is WorkflowStatus.RUNNING
    assert seen.api_then == [("slow", 1.0)], "the API answered it while the execution ran"
    rows = _sla_rows(maestro_env.settings, result.execution_id)
    assert len(rows) == 1
    with get_db(maestro_env.settings) as session:
        assert collect(session).sla_missed == {("sla_warn", "node"): 1}
    assert rows[0].data["scope"] == "node" and rows[0].data["on_miss"] == "warn"
    assert 1.0 <= rows[0].data["elapsed_seconds"] < 6
    with get_db(maestro_env.settings) as session:
        execution = session.get(WorkflowExecution, result.execution_id)
        assert execution.status is WorkflowStatus.COMPLETED and execution.error_message is None
    assert maestro_env.verify(result.execution_id) == []


def test_a_node_sla_with_on_miss_fail_fails_the_execution_with_the_reason(maestro_env):
    nodes = {
        "slow": node(
            "sleep",
            config={"seconds": 30},
            sla={"max_duration_seconds": 1, "on_miss": "fail"},
            retry_policy={"max_attempts": 3, "retry_on_failure": True},  # an SLA failure is never retried
        ),
        "after": node("echo"),
    }
    maestro_env.add_definition(definition("sla_fail", nodes, chain("slow", "after")))
    started = time.monotonic()
    result = maestro_env.run("sla_fail")
    assert not result.success
    assert time.monotonic() - started < 25, "the node was ended at its SLA, not left to sleep its 30 s"
    with get_db(maestro_env.settings) as session:
        execution = session.get(WorkflowExecution, result.execution_id)
        assert execution.status is WorkflowStatus.FAILED
        assert execution.error_node_id == "slow"
        assert execution.error_message.startswith("SLA missed: node 'slow' ran longer than its max_duration_seconds")
    states = maestro_env_nodes(maestro_env, result.execution_id)
    assert states["slow"].attempt_count == 1
    assert states["after"].status.value == "blocked"
    rows = _sla_rows(maestro_env.settings, result.execution_id)
    assert [(r.node_id, r.data["on_miss"]) for r in rows] == [("slow", "fail")]
    assert maestro_env.verify(result.execution_id) == []


def test_a_workflow_sla_counts_from_the_execution_start_and_fails_the_running_node(maestro_env):
    # a ends long before the deadline (whatever the run's start-up costs on a loaded machine), b runs across it
    nodes = {"a": node("sleep", config={"seconds": 0.1}), "b": node("sleep", config={"seconds": 30})}
    raw = definition("sla_flow", nodes, chain("a", "b"), sla={"max_duration_seconds": 8, "on_miss": "fail"})
    maestro_env.add_definition(raw)
    result, seen = _run_watched(maestro_env, "sla_flow")
    assert not result.success
    assert seen.rows == [(None, 8.0)]
    rows = _sla_rows(maestro_env.settings, result.execution_id)
    assert len(rows) == 1 and rows[0].node_id is None and rows[0].data["scope"] == "workflow"
    with get_db(maestro_env.settings) as session:
        execution = session.get(WorkflowExecution, result.execution_id)
        assert execution.status is WorkflowStatus.FAILED and execution.error_node_id == "b"
        assert execution.error_message.startswith("SLA missed: workflow 'sla_flow' ran longer")
    states = maestro_env_nodes(maestro_env, result.execution_id)
    assert states["a"].status.value == "completed"
    assert maestro_env.verify(result.execution_id) == []


def test_a_workflow_sla_that_warns_lets_the_execution_complete(maestro_env):
    nodes = {"a": node("sleep", config={"seconds": 2.5})}
    maestro_env.add_definition(definition("sla_soft", nodes, sla={"max_duration_seconds": 1}))
    result, seen = _run_watched(maestro_env, "sla_soft")
    assert result.success
    assert seen.rows == [(None, 1.0)] and seen.status_then is WorkflowStatus.RUNNING
    assert seen.api_then == [(None, 1.0)]
    with get_db(maestro_env.settings) as session:
        assert collect(session).sla_missed == {("sla_soft", "workflow"): 1}
    assert len(_sla_rows(maestro_env.settings, result.execution_id)) == 1
    assert maestro_env.verify(result.execution_id) == []


def maestro_env_nodes(maestro_env, execution_id: str):
    from _mirror_support import nodes

    return nodes(maestro_env.settings, execution_id)
