"""Typed inputs at run time (issue 17, point 1), on SQLite and PostgreSQL with a real Dagster instance in process:
``maestro run``'s path fills the defaults into the execution's ``initial_context`` and the nodes see them (their
conditions read them); a bad context launches nothing and leaves no execution row, through the code and through the
real ``maestro run`` command (exit 1, each bad input named); the job's Dagster run config is typed from the inputs,
so a launch straight through Dagster (as from the launchpad) with a bad value is refused by Dagster and one without
the optional inputs records their defaults; ``mirror verify`` finds 0 differences after each run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInvalidConfigError, execute_job
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.errors import DagsterConfigMappingFunctionError
from sqlalchemy import func, select

from maestro_dagster.db.models import ExecutionRun, NodeState, WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.names import job_name
from maestro_dagster.spec.inputs import InputError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = yaml.safe_load((ROOT / "workflow_defs" / "typed_inputs.yaml").read_text(encoding="utf-8"))
DEFAULTS = {"size": "small", "rows": 100, "dry_run": False, "recipients": []}


def executions_count(settings) -> int:
    with get_db(settings) as session:
        return session.scalar(select(func.count()).select_from(WorkflowExecution)) or 0


def row(settings, execution_id: str) -> tuple[dict, dict[str, NodeState]]:
    with get_db(settings) as session:
        execution = session.get(WorkflowExecution, execution_id)
        states = session.scalars(select(NodeState).where(NodeState.execution_id == execution_id))
        return dict(execution.initial_context), {s.node_id: s for s in states}


def test_defaults_are_recorded_and_seen_by_the_nodes(maestro_env):
    maestro_env.add_definition(EXAMPLE)
    result = maestro_env.run("typed_inputs", {"region": "eu-west", "extra": {"free": True}})
    assert result.success
    initial, states = row(maestro_env.settings, result.execution_id)
    assert initial == {"region": "eu-west", "extra": {"free": True}, **DEFAULTS}
    assert states["small_report"].status.value == "completed"  # its condition read the default size
    assert states["large_report"].status.value == "skipped"
    assert set(DEFAULTS) <= set(states["prepare"].inputs["global_context_keys"])
    assert maestro_env.verify(result.execution_id) == []

    given = maestro_env.run("typed_inputs", {"region": "us", "size": "large", "rows": 500})
    initial, states = row(maestro_env.settings, given.execution_id)
    assert (initial["size"], initial["rows"], initial["dry_run"]) == ("large", 500, False)
    assert (states["small_report"].status.value, states["large_report"].status.value) == ("skipped", "completed")
    assert maestro_env.verify(given.execution_id) == []


def test_a_bad_context_launches_nothing(maestro_env):
    maestro_env.add_definition(EXAMPLE)
    before, runs_before = executions_count(maestro_env.settings), len(maestro_env.instance.get_run_records())
    with pytest.raises(InputError) as caught:
        maestro_env.run("typed_inputs", {"rows": "many", "size": "huge", "dry_run": "no"})
    assert {e["input"]: e["code"] for e in caught.value.details["errors"]} == {
        "region": "missing_input", "rows": "wrong_type", "size": "not_in_enum", "dry_run": "wrong_type",
    }  # fmt: skip
    assert executions_count(maestro_env.settings) == before
    assert len(maestro_env.instance.get_run_records()) == runs_before


def test_maestro_run_refuses_a_bad_context_naming_each_input(maestro_env):
    maestro_env.add_definition(EXAMPLE)
    done = subprocess.run(
        [sys.executable, "-m", "maestro_dagster", "run", "typed_inputs", "--in-process",
         "--context", json.dumps({"rows": 2.5, "size": "medium"})],
        env={**os.environ, "COLUMNS": "200"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    text = " ".join((done.stdout + done.stderr).split())
    for words in ("required input 'region'", "input 'rows' must be of type integer", "'medium' is not one of"):
        assert words in text, text
    assert "Traceback" not in text
    assert executions_count(maestro_env.settings) == 0
    assert maestro_env.instance.get_run_records() == []


def _recon():
    repository = ReconstructableRepository.for_module("maestro_dagster.definitions", "maestro")
    return repository.get_reconstructable_job(job_name("typed_inputs"))


def test_a_launch_through_dagster_is_typed_by_the_inputs(maestro_env):
    maestro_env.add_definition(EXAMPLE)
    in_process = {"execution": {"config": {"in_process": {}}}}
    job = _recon().get_definition()
    fields = job.run_config_schema.config_type.fields["initial_context"]
    assert fields.is_required  # region is required
    typed = fields.config_type.fields
    assert {name: typed[name].config_type.given_name for name in ("region", "size", "rows", "dry_run")} == {
        "region": "String", "size": "String", "rows": "Int", "dry_run": "Bool",
    }  # fmt: skip
    assert typed["rows"].default_value == 100 and not typed["rows"].is_required

    for bad, error in (
        ({"initial_context": {"region": "eu", "rows": "many"}}, DagsterInvalidConfigError),
        ({}, DagsterInvalidConfigError),  # region missing
        ({"initial_context": {"region": "eu", "size": "huge"}}, DagsterConfigMappingFunctionError),  # the enum
    ):
        with (
            pytest.raises(error),
            execute_job(_recon(), instance=maestro_env.instance, run_config={**bad, **in_process}),
        ):
            pass
    assert maestro_env.instance.get_run_records() == []
    assert executions_count(maestro_env.settings) == 0

    with execute_job(
        _recon(), instance=maestro_env.instance, run_config={"initial_context": {"region": "ap"}, **in_process}
    ) as result:
        assert result.success
        run_id = result.run_id
    with get_db(maestro_env.settings) as session:
        execution_id = session.get(ExecutionRun, run_id).execution_id
    initial, states = row(maestro_env.settings, execution_id)
    assert initial == {"region": "ap", **DEFAULTS}
    assert states["small_report"].status.value == "completed"
    assert maestro_env.verify(execution_id) == []
