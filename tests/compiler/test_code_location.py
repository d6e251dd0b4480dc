"""The lazy code location ``maestro_dagster.definitions``: valid rows become jobs, invalid ones never break it.

Each test reloads the module: ``@repository`` builds the repository (and its job cache) once at import,
as a code server does, so a fresh import stands for a fresh Dagster process.
"""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
from collections.abc import Callable

import pytest
from _compiler_support import run
from _defs import chain, definition
from sqlalchemy import select

from maestro_dagster.cli import main as cli_main
from maestro_dagster.db.models import WorkflowDefinition
from maestro_dagster.db.session import get_db
from maestro_dagster.defs_store import sync_directory
from maestro_dagster.errors import DefinitionError, NotFoundError
from maestro_dagster.settings import get_settings

ALPHA = """\
id: alpha
name: Alpha
nodes:
  first: {executor: "maestro_examples.nodes:echo"}
  second: {executor: "maestro_examples.nodes:echo", config: {output: {done: true}}}
edges:
  - {source: first, target: second}
"""
BETA = """\
id: beta-flow
nodes:
  only: {executor: noop, config: {output: {answer: 42}}}
"""
INVALID = """\
id: gamma
nodes:
  a: {executor: "os:system"}
  b: {}
edges:
  - {source: a, target: b}
  - {source: b, target: a}
"""
SYNTAX_ERROR = """\
id: delta
nodes:
  a: {executor: noop
edges: []
"""


@pytest.fixture
def defs_dir(tmp_path, monkeypatch):
    directory = tmp_path / "defs"
    directory.mkdir()
    for name, text in [
        ("alpha.yaml", ALPHA),
        ("beta.yaml", BETA),
        ("gamma.yaml", INVALID),
        ("delta.yml", SYNTAX_ERROR),
    ]:
        (directory / name).write_text(textwrap.dedent(text))
    monkeypatch.setenv("MAESTRO_DEFS_DIR", str(directory))
    get_settings.cache_clear()
    return directory


@pytest.fixture
def location(db, defs_dir, monkeypatch):
    """A freshly imported ``maestro_dagster.definitions`` whose ``build_job`` calls are recorded."""
    module = importlib.reload(importlib.import_module("maestro_dagster.definitions"))
    real_build_job = module.build_job
    compiled: list[str] = []

    def counting_build_job(spec, **kwargs):
        compiled.append(spec.id)
        return real_build_job(spec, **kwargs)

    monkeypatch.setattr(module, "build_job", counting_build_job)
    monkeypatch.setattr(module, "compiled", compiled, raising=False)
    return module


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as excinfo:
        cli_main(list(args))
    out, err = capsys.readouterr()
    return excinfo.value.code or 0, out, err


def _workflow_jobs(names) -> list[str]:
    """The names that are workflow jobs (the location also has the reporting jobs of ``maestro_dagster.assets``)."""
    from maestro_dagster.assets import reporting_definitions

    reporting = set(reporting_definitions().get_repository_def().job_names)
    return sorted(getattr(name, "name", name) for name in names if getattr(name, "name", name) not in reporting)


def _stored_ids() -> list[str]:
    with get_db() as session:
        return sorted(session.scalars(select(WorkflowDefinition.id)).all())


def test_location_lists_exactly_the_valid_jobs(location, defs_dir, capsys):
    repo = location.maestro
    assert repo.name == "maestro"
    jobs = repo.get_all_jobs()
    assert _workflow_jobs(jobs) == sorted(["alpha", location.job_name("beta-flow")])
    assert sorted(location.compiled) == ["alpha", "beta-flow"]
    assert _stored_ids() == ["alpha", "beta-flow", "delta", "gamma"]

    code, out, _ = _cli(capsys, "defs", "list", "--json")
    assert code == 0
    items = {item["id"]: item for item in json.loads(out)}
    assert set(items) == {"alpha", "beta-flow", "gamma", "delta"}
    assert items["alpha"] == {
        "id": "alpha",
        "version": 1,
        "nodes": 2,
        "valid": True,
        "job": "alpha",
        "errors": [],
        "source": str(defs_dir / "alpha.yaml"),
    }
    assert items["beta-flow"]["job"] == location.job_name("beta-flow")
    assert items["gamma"]["valid"] is False and items["gamma"]["job"] is None
    gamma_errors = " ".join(items["gamma"]["errors"])
    assert "cycle" in gamma_errors and "'os:system' is outside the allowlist" in gamma_errors
    assert items["delta"]["valid"] is False
    assert items["delta"]["errors"] == [
        "delta.yml is not valid YAML at line 4, column 6: did not find expected ',' or '}'; fix the syntax there"
    ]


def test_listing_names_compiles_nothing_and_get_job_compiles_one(location, instance):
    repo = location.maestro
    assert _workflow_jobs(repo.job_names) == sorted(["alpha", location.job_name("beta-flow")])
    assert repo.has_job("alpha") and not repo.has_job("gamma")
    assert location.compiled == []

    job = repo.get_job("alpha")
    assert location.compiled == ["alpha"]
    assert repo.get_job("alpha") is job  # cached: compiled once per process
    assert location.compiled == ["alpha"]
    assert job.tags == {"maestro/workflow_id": "alpha", "maestro/workflow_version": "1"}

    result = run(job, instance, {"from": "location"})
    assert result.success
    assert result.output_for_node("second").output["done"] is True
    assert result.output_for_node("second").output["global_context"] == {"from": "location"}


def test_a_run_worker_compiles_its_job_without_syncing(location, defs_dir):
    # As after `maestro defs sync`: rows exist; a run worker then asks only for its own job.
    with get_db(immediate=True) as session:
        sync_directory(session, defs_dir, get_settings())
    (defs_dir / "epsilon.yaml").write_text("id: epsilon\nnodes: {a: {}}\n")
    job = location.maestro.get_job(location.job_name("beta-flow"))
    assert job.tags["maestro/workflow_id"] == "beta-flow"
    assert location.compiled == ["beta-flow"]
    assert "epsilon" not in _stored_ids()  # get_job never syncs the directory


def test_invalid_definition_has_no_job(location):
    location.maestro.job_names  # noqa: B018 - triggers the sync
    with pytest.raises(NotFoundError, match="No valid workflow definition compiles to job 'gamma'"):
        location.maestro.get_job("gamma")
    assert location.compiled == []


def test_sync_on_load_can_be_turned_off(location, monkeypatch):
    monkeypatch.setenv("MAESTRO_SYNC_DEFS_ON_LOAD", "false")
    get_settings.cache_clear()
    assert _workflow_jobs(location.maestro.job_names) == []
    assert _workflow_jobs(location.maestro.get_all_jobs()) == []
    assert _stored_ids() == []
    assert location.compiled == []


def test_sync_happens_once_per_process(location, defs_dir):
    assert len(_workflow_jobs(location.maestro.job_names)) == 2
    (defs_dir / "epsilon.yaml").write_text("id: epsilon\nnodes: {a: {}}\n")
    # a later listing does not re-sync the directory (a code location reload does)
    assert len(_workflow_jobs(location.maestro.job_names)) == 2
    assert "epsilon" not in _stored_ids()


def test_a_stored_row_that_no_longer_parses_does_not_break_the_location(location):
    assert len(_workflow_jobs(location.maestro.job_names)) == 2
    with get_db() as session:  # as if stored by an older Maestro whose format allowed this schedule name
        row = session.get(WorkflowDefinition, "alpha")
        row.definition = {**row.definition, "schedules": [{"cron": "0 2 * * *", "name": "nightly-run"}]}
    assert _workflow_jobs(location.maestro.get_all_jobs()) == [location.job_name("beta-flow")]
    with pytest.raises(DefinitionError, match=r"'alpha' \(version 1\) is stored as valid but no longer matches"):
        location.maestro.get_job("alpha")


def test_get_all_jobs_reads_the_index_once(location, monkeypatch):
    data = location.MaestroRepositoryData()
    reads: list[int] = []
    real_index = data._index
    monkeypatch.setattr(data, "_index", lambda: (reads.append(1), real_index())[1])
    assert len(_workflow_jobs(data.get_all_jobs())) == 2
    assert len(reads) == 1
    assert sorted(location.compiled) == ["alpha", "beta-flow"]


def _chain(workflow_id: str, length: int) -> dict:
    nodes = {f"n{i}": {"executor": "noop"} for i in range(length)}
    return definition(workflow_id, nodes, chain(*nodes))


def test_a_definition_that_cannot_compile_is_isolated_and_marked_invalid(location, defs_dir, monkeypatch, capsys):
    # Past every limit (raised here), a 6,000-node chain is valid but Dagster cannot build its graph
    # (RecursionError): it must not take the location, and the other workflows, down with it.
    for name in ("MAESTRO_MAX_NODES", "MAESTRO_MAX_EDGES", "MAESTRO_MAX_DEPTH"):
        monkeypatch.setenv(name, "20000")
    get_settings.cache_clear()
    (defs_dir / "deep.json").write_text(json.dumps(_chain("deep", 6000)))
    repo = location.maestro
    assert "deep" in repo.job_names  # valid as far as validation can tell
    jobs = repo.get_all_jobs()
    assert _workflow_jobs(jobs) == sorted(["alpha", location.job_name("beta-flow")])
    assert "deep" not in repo.job_names  # marked invalid: no longer listed
    with pytest.raises(NotFoundError):
        repo.get_job("deep")

    code, out, _ = _cli(capsys, "defs", "list", "--json")
    assert code == 0
    deep = {item["id"]: item for item in json.loads(out)}["deep"]
    assert deep["valid"] is False and deep["job"] is None
    assert "could not be compiled into a Dagster job (RecursionError" in " ".join(deep["errors"])
    with get_db() as session:
        row = session.get(WorkflowDefinition, "deep")
        assert [e["code"] for e in row.validation_errors] == ["compile_error"]

    # Storing the same content again (after fixing the environment, say) lets the location try once more.
    with get_db(immediate=True) as session:
        result = {r.workflow_id: r for r in sync_directory(session, defs_dir, get_settings())}["deep"]
    assert result.valid and not result.changed
    with get_db() as session:
        assert session.get(WorkflowDefinition, "deep").is_valid is True


def _executor_module(name: str, tmp_path, monkeypatch) -> Callable[[], None]:
    """An allowed executor module ``name`` (a ``run`` function) on ``sys.path``; call what it returns to make the
    module vanish (its file deleted, its import and the executor cache forgotten), as on a machine without it."""
    module_dir = tmp_path / "modules"
    module_dir.mkdir()
    path = module_dir / f"{name}.py"
    path.write_text("def run(node_input):\n    return {'ok': True}\n")
    monkeypatch.syspath_prepend(str(module_dir))
    monkeypatch.setenv("MAESTRO_EXECUTOR_ALLOWLIST", f"maestro_examples,{name}")
    get_settings.cache_clear()

    def vanish() -> None:
        path.unlink()
        monkeypatch.delitem(sys.modules, name)
        from maestro_dagster.executors import clear_cache

        clear_cache()

    return vanish


def test_a_vanished_executor_module_isolates_only_its_workflow(location, defs_dir, tmp_path, monkeypatch):
    vanish = _executor_module("vanishing_nodes", tmp_path, monkeypatch)
    (defs_dir / "vanish.yaml").write_text("id: vanish\nnodes:\n  a: {executor: 'vanishing_nodes:run'}\n")
    repo = location.maestro
    assert "vanish" in repo.job_names  # validated (and imported) while the module existed
    vanish()
    assert _workflow_jobs(repo.get_all_jobs()) == sorted(["alpha", location.job_name("beta-flow")])
    with get_db() as session:
        errors = session.get(WorkflowDefinition, "vanish").validation_errors
    assert errors[0]["code"] == "compile_error" and "'vanishing_nodes:run'" in errors[0]["message"]


def test_a_run_worker_that_cannot_compile_its_job_fails_without_marking_it(location, defs_dir, tmp_path, monkeypatch):
    # A package missing on one worker machine fails that worker's run; the definition stays valid for the others.
    vanish = _executor_module("worker_only_nodes", tmp_path, monkeypatch)
    (defs_dir / "remote.yaml").write_text("id: remote\nnodes:\n  a: {executor: 'worker_only_nodes:run'}\n")
    with get_db(immediate=True) as session:
        sync_directory(session, defs_dir, get_settings())
    vanish()
    with pytest.raises(DefinitionError, match="could not be compiled"):
        location.maestro.get_job("remote")
    with get_db() as session:
        row = session.get(WorkflowDefinition, "remote")
        assert row.is_valid is True and row.validation_errors == []
