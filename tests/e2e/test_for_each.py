"""Dynamic fan-out through a real Dagster instance (SQLite and PostgreSQL): a ``for_each`` node over 20 items
runs once per item, each item its own node state ``work[i]``; the node after it receives every item's output in
order; with 2 items failing the execution fails, and a resume from failure re-runs only those 2 items (and the
node after them), into the same execution; ``mirror verify`` finds no difference at each step."""

from __future__ import annotations

import pytest
from _defs import definition, echo, node
from sqlalchemy import delete, select

from maestro_dagster.db.models import ExecutionEvent, NodeState, WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.executions.local import resume_workflow
from maestro_dagster.mirror import mirror_run, sync_runs
from maestro_dagster.states import EventType, NodeStatus, WorkflowStatus

ITEMS = list(range(1, 21))
IN_ORDER = " and ".join(  # the condition language has no comprehension: the count, then items 0, 7 and 19
    ["len(outputs['work']['items']) == 20"]
    + [f"outputs['work']['items'][{i}]['doubled'] == {2 * ITEMS[i]}" for i in (0, 7, 19)]
)


def _fanned(workflow_id: str, **work_config) -> dict:
    nodes = {
        "list": echo(output={"numbers": ITEMS}),
        "work": node("process_item", for_each="outputs['list']['numbers']", config=work_config),
        "report": {**echo(), "condition": IN_ORDER},  # runs only if it got the items' outputs in order
    }
    raw = definition(workflow_id, nodes, [("list", "work"), ("work", "report")])
    raw["defaults"] = {"on_condition_error": "fail"}
    return raw


def _rows(settings, workflow_id: str) -> tuple[WorkflowExecution, dict[str, NodeState], list[ExecutionEvent]]:
    with get_db(settings) as session:
        execution = session.scalars(select(WorkflowExecution).where(WorkflowExecution.workflow_id == workflow_id)).one()
        states = session.scalars(select(NodeState).where(NodeState.execution_id == execution.id)).all()
        events = session.scalars(select(ExecutionEvent).where(ExecutionEvent.execution_id == execution.id)).all()
        session.expunge_all()
        return execution, {s.node_id: s for s in states}, list(events)


def test_for_each_runs_one_node_state_per_item_and_collects_them_in_order(maestro_env):
    maestro_env.add_definition(_fanned("fe_ok"))
    result = maestro_env.run("fe_ok", in_process=False)
    assert result.success
    execution, states, _ = _rows(maestro_env.settings, "fe_ok")
    assert execution.status is WorkflowStatus.COMPLETED
    items = [states[f"work[{i}]"] for i in range(20)]
    assert all(s.status is NodeStatus.COMPLETED and s.attempt_count == 1 for s in items)
    assert [s.outputs["doubled"] for s in items] == [2 * n for n in ITEMS]
    assert states["work"].outputs == {"count": 20, "items": ITEMS}
    assert states["report"].status is NodeStatus.COMPLETED
    assert states["report"].outputs["dependencies"] == ["work"]
    assert execution.total_nodes == 3 + 20 and execution.progress_percent == 100.0
    assert maestro_env.verify(execution.id) == []


def test_two_failing_items_fail_the_execution_and_a_resume_reruns_only_them(maestro_env, tmp_path):
    until = tmp_path / "fixed"
    maestro_env.add_definition(_fanned("fe_resume", fail_items=[4, 17], until_file=str(until)))
    result = maestro_env.run("fe_resume", in_process=False)
    assert not result.success
    execution, states, _ = _rows(maestro_env.settings, "fe_resume")
    assert execution.status is WorkflowStatus.FAILED
    failed = sorted(n for n, s in states.items() if s.status is NodeStatus.FAILED)
    assert failed == ["work[16]", "work[3]"]
    assert states["work[3]"].error_message == "item 3 (4) failed on purpose"
    assert states["report"].status is NodeStatus.BLOCKED
    done = {n: s.completed_at for n, s in states.items() if s.status is NodeStatus.COMPLETED}
    assert len([n for n in done if n.startswith("work[")]) == 18
    assert maestro_env.verify(execution.id) == []

    until.write_text("ok")
    resumed = maestro_env.resume(execution.id, in_process=False)
    assert resumed.success
    after, states_after, events = _rows(maestro_env.settings, "fe_resume")
    assert after.id == execution.id and after.status is WorkflowStatus.COMPLETED
    assert all(states_after[f"work[{i}]"].status is NodeStatus.COMPLETED for i in range(20))
    for node_id, completed_at in done.items():  # the 18 items (and list, work) were not run again
        assert states_after[node_id].completed_at == completed_at, node_id
        assert states_after[node_id].attempt_count == 1, node_id
    assert states_after["work[3]"].attempt_count == 2 and states_after["work[16]"].attempt_count == 2
    started = [e.node_id for e in events if e.event_type is EventType.NODE_STARTED]
    assert sorted(n for n in started if n and n.startswith("work[")).count("work[3]") == 2
    assert started.count("work[5]") == 1
    assert states_after["report"].status is NodeStatus.COMPLETED  # its condition saw all 20 outputs in order
    assert maestro_env.verify(execution.id) == []


@pytest.mark.parametrize("from_node", ["work", "report"])
def test_replay_from_a_for_each_node_or_after_it(maestro_env, from_node):
    maestro_env.add_definition(_fanned(f"fe_replay_{from_node}"))
    first = maestro_env.run(f"fe_replay_{from_node}", in_process=False)
    assert first.success
    _, before, _ = _rows(maestro_env.settings, f"fe_replay_{from_node}")
    second = resume_workflow(maestro_env.instance, first.execution_id, from_node=from_node, in_process=False)
    assert second.success and second.execution_id == first.execution_id
    after, states, _ = _rows(maestro_env.settings, f"fe_replay_{from_node}")
    assert after.status is WorkflowStatus.COMPLETED
    rerun = {n for n, s in states.items() if s.attempt_count == 2}
    items = {f"work[{i}]" for i in range(20)}
    assert rerun == ({"work", "report"} | items if from_node == "work" else {"report"})
    assert states["list"].completed_at == before["list"].completed_at
    assert states["report"].status is NodeStatus.COMPLETED
    assert maestro_env.verify(first.execution_id) == []


def test_a_lost_mirror_of_a_fan_out_is_rebuilt_from_dagster_alone(maestro_env):
    maestro_env.add_definition(_fanned("fe_rebuild", fail_items=[2]))
    first = maestro_env.run("fe_rebuild", in_process=False)
    assert not first.success
    _, before, _ = _rows(maestro_env.settings, "fe_rebuild")

    def shown(states):
        return {n: (s.status, s.attempt_count, s.outputs, s.error_message, s.completed_at) for n, s in states.items()}

    assert mirror_run(maestro_env.instance, first.run_id).complete  # again: nothing changes
    assert shown(_rows(maestro_env.settings, "fe_rebuild")[1]) == shown(before)
    with get_db(maestro_env.settings) as session:  # lose the execution, its node states (items too) and events
        session.execute(delete(WorkflowExecution).where(WorkflowExecution.id == first.execution_id))
    report = sync_runs(maestro_env.instance)
    assert [r.run_id for r in report.runs] == [first.run_id] and report.runs[0].complete
    rebuilt, after, _ = _rows(maestro_env.settings, "fe_rebuild")
    assert rebuilt.id == first.execution_id and rebuilt.status is WorkflowStatus.FAILED
    assert shown(after) == shown(before) and len(after) == 23
    assert maestro_env.verify(first.execution_id) == []


def test_a_failed_item_is_what_the_failure_handler_is_told(maestro_env):
    raw = _fanned("fe_handled", fail_items=[5])
    raw["on_failure"] = {"alert": echo()}
    maestro_env.add_definition(raw)
    assert not maestro_env.run("fe_handled", in_process=False).success
    execution, states, _ = _rows(maestro_env.settings, "fe_handled")
    assert execution.status is WorkflowStatus.FAILED and execution.error_node_id == "work[4]"
    assert states["alert"].status is NodeStatus.COMPLETED
    assert states["alert"].outputs["failure"]["failed_nodes"] == [
        {"node_id": "work[4]", "error": "item 4 (5) failed on purpose", "error_type": "RuntimeError"}
    ]
    assert len([n for n in states if n.startswith("work[")]) == 20
    assert maestro_env.verify(execution.id) == []


def test_an_empty_list_runs_no_item_and_the_next_node_gets_no_items(maestro_env):
    nodes = {
        "list": echo(output={"numbers": []}),
        "work": node("process_item", for_each="outputs['list']['numbers']"),
        "report": {**echo(), "condition": "outputs['work']['items'] == []"},
    }
    raw = definition("fe_empty", nodes, [("list", "work"), ("work", "report")])
    maestro_env.add_definition({**raw, "defaults": {"on_condition_error": "fail"}})
    assert maestro_env.run("fe_empty").success
    execution, states, _ = _rows(maestro_env.settings, "fe_empty")
    assert execution.status is WorkflowStatus.COMPLETED and sorted(states) == ["list", "report", "work"]
    assert states["work"].outputs == {"count": 0, "items": []}
    assert states["report"].status is NodeStatus.COMPLETED
    assert maestro_env.verify(execution.id) == []
