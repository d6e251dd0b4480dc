"""Runs across processes: the multiprocess executor, a run mirroring itself while alive, and a run launched
straight through Dagster (no ``maestro run``, no execution row beforehand)."""

from __future__ import annotations

import threading
import time
from datetime import UTC

from _defs import fan_out, linear
from _mirror_support import assert_event_order, assert_node_completed, events, execution, nodes, runs, types
from dagster import DagsterRunStatus, execute_job
from dagster._core.definitions.reconstruct import ReconstructableRepository
from sqlalchemy import select

from maestro_dagster.db.models import ExecutionRun, WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.names import EXECUTION_ID_RE, job_name


def _observe(settings, instance, workflow_id: str, worker: threading.Thread) -> dict[str, set[str]]:
    """Poll the tables while the run is alive; keep only what was read before Dagster finished the run."""
    seen: dict[str, set[str]] = {"statuses": set(), "events": set()}
    deadline = time.monotonic() + 120
    while worker.is_alive() and time.monotonic() < deadline:
        with get_db(settings) as session:
            ex_id = session.scalars(select(WorkflowExecution.id).where(WorkflowExecution.workflow_id == workflow_id))
            ex_id = ex_id.first()
        run_rows = runs(settings, ex_id) if ex_id else []
        if run_rows:
            statuses = {f"{n}:{s.status.value}" for n, s in nodes(settings, ex_id).items()}
            event_types = {e.event_type.value for e in events(settings, ex_id)}
            run = instance.get_run_by_id(run_rows[0].run_id)
            if run is not None and run.status == DagsterRunStatus.STARTED:  # the rows were read while it ran
                seen["statuses"] |= statuses
                seen["events"] |= event_types
        time.sleep(0.25)
    return seen


def test_multiprocess_fan_out_mirrors_itself_while_alive(maestro_env):
    """One multiprocess run (a step per process) serves both checks, as each step process costs seconds:
    src -> (m1, m2) -> sink, every node sleeping 1.5 s, so three sleeping nodes run one after the other."""
    spec = maestro_env.add_definition(fan_out("mp_fan_out", 2, executor="sleep", config={"seconds": 1.5}))
    outcome: dict[str, object] = {}

    def run() -> None:
        outcome["result"] = maestro_env.run(spec.id, {"requirement": "multi"}, in_process=False)

    worker = threading.Thread(target=run, name="multiprocess-run")
    worker.start()
    seen = _observe(maestro_env.settings, maestro_env.instance, spec.id, worker)
    worker.join(timeout=120)
    result = outcome["result"]
    assert result.success

    # while the run was alive its own process had mirrored it
    assert {"workflow_started", "node_started", "node_completed"} <= seen["events"], seen["events"]
    assert "workflow_completed" not in seen["events"]
    assert {"src:running", "src:completed", "m1:running", "sink:pending"} <= seen["statuses"], seen["statuses"]

    settings = maestro_env.settings
    states = nodes(settings, result.execution_id)
    assert set(states) == {"src", "m1", "m2", "sink"}
    for state in states.values():
        assert_node_completed(state)
        assert state.outputs == {"status": "completed", "slept_seconds": 1.5}
        assert state.duration_seconds >= 1.5
    assert states["sink"].inputs["upstream"] == {"m1": "completed", "m2": "completed"}
    assert states["sink"].started_at >= max(states["m1"].completed_at, states["m2"].completed_at)
    ex = execution(settings, result.execution_id)
    assert (ex.status.value, ex.completed_nodes, ex.progress_percent) == ("completed", 4, 100.0)
    evs = events(settings, result.execution_id)
    assert_event_order(evs)
    assert types(evs) == ["workflow_started", "workflow_completed"]
    for node_id in states:
        assert types(evs, node_id) == ["node_started", "node_completed"]
    assert maestro_env.verify(result.execution_id) == []


def test_run_launched_directly_through_dagster_creates_its_execution(maestro_env):
    spec = maestro_env.add_definition(linear("external_flow", 2))
    recon = ReconstructableRepository.for_module("maestro_dagster.definitions", "maestro").get_reconstructable_job(
        job_name(spec.id)
    )
    context = {"requirement": "from the launchpad", "n": 1}
    run_config = {"initial_context": context, "execution": {"config": {"in_process": {}}}}
    with execute_job(recon, instance=maestro_env.instance, run_config=run_config) as result:
        assert result.success
        run_id = result.run_id
    run = maestro_env.instance.get_run_by_id(run_id)
    assert "maestro/execution_id" not in run.tags and run.tags["maestro/workflow_id"] == spec.id

    with get_db(maestro_env.settings) as session:
        run_row = session.get(ExecutionRun, run_id)
    execution_id = run_row.execution_id
    match = EXECUTION_ID_RE.match(execution_id)
    assert match, execution_id
    assert match["workflow_id"] == spec.id and match["suffix"] == run_id.replace("-", "")[:8]
    created = maestro_env.instance.get_run_record_by_id(run_id).create_timestamp.astimezone(UTC)
    assert match["ts"] == f"{created:%Y%m%d_%H%M%S}"
    assert (run_row.kind.value, run_row.trigger, run_row.root_run_id) == ("initial", "dagster", run_id)

    ex = execution(maestro_env.settings, execution_id)
    assert ex.workflow_id == spec.id and ex.workflow_version == 1
    assert ex.execution_metadata["trigger"] == "dagster" and ex.execution_metadata["job_name"] == job_name(spec.id)
    assert ex.initial_context == context and ex.global_context == context
    assert (ex.status.value, ex.completed_nodes, ex.total_nodes) == ("completed", 2, 2)
    states = nodes(maestro_env.settings, execution_id)
    assert states["n1"].outputs["global_context"] == context
    evs = events(maestro_env.settings, execution_id)
    assert types(evs) == ["workflow_started", "workflow_completed"]
    assert evs[0].data["initial_context"] == context
    assert maestro_env.verify(execution_id) == []
