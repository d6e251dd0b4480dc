"""The mirror primitive is idempotent, repairs lost rows, and is safe from two processes at once."""

from __future__ import annotations

from typing import Any

from _defs import definition, node
from _mirror_support import events, maestro_cli, nodes, snapshot
from sqlalchemy import delete, text, update

from maestro_dagster.db.models import ExecutionEvent, ExecutionRun, NodeState, WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.mirror import mirror_run, sync_runs
from maestro_dagster.settings import get_settings
from maestro_dagster.states import EventType, NodeStatus

RESET_NODES = ("a", "report")
DELETED_EVENTS = (EventType.NODE_COMPLETED, EventType.ARTIFACT_CREATED, EventType.WORKFLOW_COMPLETED)
PENDING: dict[str, Any] = {
    "status": NodeStatus.PENDING, "attempt_count": 0, "run_attempt": 0, "last_run_id": None, "inputs": None,
    "outputs": None, "started_at": None, "completed_at": None, "duration_seconds": None, "quality_score": None,
    "contract_fulfilled": None,
}  # fmt: skip


def _workflow(tmp_path) -> dict[str, Any]:
    return definition(
        "idem_flow",
        {
            "a": node(),
            # Inside the artifacts directory: a reported artifact must be inside the artifact roots.
            "report": node(
                "write_file", config={"path": str(get_settings().artifacts_dir / "report.md"), "quality_score": 0.9}
            ),
            "skip": node(condition="'never' in global_context"),
            "z": node(),
        },
        [("a", "report"), ("a", "skip"), ("report", "z"), ("skip", "z")],
    )


def _wipe(settings, execution_id: str, run_id: str) -> None:
    """Lose part of the mirror: rewind the run's cursor, delete event rows, reset node states to pending."""
    with get_db(settings) as session:
        session.execute(
            update(ExecutionRun).where(ExecutionRun.run_id == run_id).values(last_storage_id=0, mirror_complete=False)
        )
        session.execute(
            delete(ExecutionEvent).where(
                ExecutionEvent.execution_id == execution_id, ExecutionEvent.event_type.in_(DELETED_EVENTS)
            )
        )
        session.execute(
            update(NodeState)
            .where(NodeState.execution_id == execution_id, NodeState.node_id.in_(RESET_NODES))
            .values(**PENDING)
        )


def _comparable(snap: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """A snapshot with event rows keyed by their Dagster event part (re-inserted rows get new ids)."""
    out = dict(snap)
    out["execution_events"] = sorted(
        ({k: v for k, v in row.items() if k != "id"} for row in snap["execution_events"]),
        key=lambda r: (r["dagster_run_id"], r["dagster_storage_id"], r["dagster_event_part"]),
    )
    return out


def _run(maestro_env, tmp_path):
    spec = maestro_env.add_definition(_workflow(tmp_path))
    result = maestro_env.run(spec.id, {"requirement": "idempotent"})
    assert result.success
    states = nodes(maestro_env.settings, result.execution_id)
    assert [states[n].status.value for n in ("a", "report", "skip", "z")] == [
        "completed", "completed", "skipped", "completed",
    ]  # fmt: skip
    assert states["report"].quality_score == 0.9 and states["report"].contract_fulfilled is True
    return result


def test_mirroring_again_changes_nothing_and_sync_restores_lost_rows(maestro_env, tmp_path):
    result = _run(maestro_env, tmp_path)
    settings, instance = maestro_env.settings, maestro_env.instance
    before = snapshot(settings)
    assert len(before["artifacts"]) == 1 and before["artifacts"][0]["sha256"]

    for _ in range(2):
        again = mirror_run(instance, result.run_id)
        assert again.complete and again.execution_id == result.execution_id
    assert sync_runs(instance).runs == []  # nothing left to mirror
    report = sync_runs(instance, run_ids=[result.run_id])
    assert [r.run_id for r in report.runs] == [result.run_id] and not report.failed_dead_runs
    assert snapshot(settings) == before
    with get_db(settings) as session:  # a full replay of every event over the complete rows
        session.execute(update(ExecutionRun).values(mirror_complete=False))
    replay = mirror_run(instance, result.run_id)
    assert replay.complete and replay.events_read > 0
    assert snapshot(settings) == before
    assert maestro_env.verify(result.execution_id) == []

    _wipe(settings, result.execution_id, result.run_id)
    differences = [str(d) for d in maestro_env.verify(result.execution_id)]
    assert any("missing event node_completed" in d for d in differences)
    assert any("node a.status is" in d for d in differences)

    report = sync_runs(instance)
    assert [r.run_id for r in report.runs] == [result.run_id]
    assert report.runs[0].complete and report.runs[0].events_read > 0
    assert _comparable(snapshot(settings)) == _comparable(before)
    assert maestro_env.verify(result.execution_id) == []


def test_two_concurrent_sync_processes_write_each_row_once(maestro_env, tmp_path):
    result = _run(maestro_env, tmp_path)
    settings = maestro_env.settings
    before = _comparable(snapshot(settings))
    _wipe(settings, result.execution_id, result.run_id)

    procs = [maestro_cli(maestro_env, "mirror", "sync", "--all") for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs

    evs = events(settings, result.execution_id)
    keys = [(e.dagster_run_id, e.dagster_storage_id, e.dagster_event_part) for e in evs]
    assert len(keys) == len(set(keys))
    assert sum(e.event_type is EventType.WORKFLOW_COMPLETED for e in evs) == 1
    assert _comparable(snapshot(settings)) == before
    assert maestro_env.verify(result.execution_id) == []


def _refuse_run(session, run_id: str) -> None:
    """A database trigger that rejects the ``execution_runs`` row of ``run_id``: a run that cannot be mirrored."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                "CREATE FUNCTION refuse_run() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.run_id = '{run_id}' THEN RAISE EXCEPTION 'refused by test'; END IF; RETURN NEW; END $$ "
                "LANGUAGE plpgsql"
            )
        )
        session.execute(
            text("CREATE TRIGGER refuse_run BEFORE INSERT ON execution_runs FOR EACH ROW EXECUTE FUNCTION refuse_run()")
        )
    else:
        session.execute(
            text(
                "CREATE TRIGGER refuse_run BEFORE INSERT ON execution_runs "
                f"WHEN NEW.run_id = '{run_id}' BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
            )
        )


def test_a_run_that_cannot_be_mirrored_holds_back_no_other(maestro_env, tmp_path):
    maestro_env.add_definition(_workflow(tmp_path))
    results = [maestro_env.run("idem_flow") for _ in range(3)]
    settings = maestro_env.settings
    with get_db(settings) as session:  # lose the whole mirror of the three runs
        session.execute(delete(WorkflowExecution).where(WorkflowExecution.id.in_([r.execution_id for r in results])))
    with get_db(settings) as session:
        _refuse_run(session, results[1].run_id)

    report = sync_runs(maestro_env.instance)
    by_run = {r.run_id: r for r in report.runs}
    assert [r.run_id for r in report.errors] == [results[1].run_id]
    assert "refused by test" in by_run[results[1].run_id].error
    for good in (results[0], results[2]):
        assert by_run[good.run_id].complete and by_run[good.run_id].error is None
        assert maestro_env.verify(good.execution_id) == []
    cli = maestro_cli(maestro_env, "mirror", "sync", "--all")
    output = cli.communicate(timeout=120)[0]
    assert cli.returncode == 1 and f"run {results[1].run_id}: not mirrored" in output and "refused by test" in output

    with get_db(settings) as session:
        session.execute(text("DROP TRIGGER refuse_run" + (" ON execution_runs" if _is_pg(session) else "")))
    report = sync_runs(maestro_env.instance)
    assert [r.run_id for r in report.runs] == [results[1].run_id] and not report.errors
    assert maestro_env.verify(results[1].execution_id) == []


def _is_pg(session) -> bool:
    return session.get_bind().dialect.name == "postgresql"
