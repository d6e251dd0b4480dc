"""Re-executions keep every run's artifacts (issue 12, point 6): apart on disk, and one row per file per run.

"Re-execute all" of a completed run lands in the same execution. Each run writes under its own directory
(``<artifacts dir>/<execution id>/<run id>/<node id>``), so the first run's files are still there, unchanged,
and the ``artifacts`` rows say which run made them (``dagster_run_id``). A node that writes a fixed path (outside
that directory, in ``MAESTRO_ARTIFACT_ROOTS``) overwrites its file, but each run keeps its own row with what the
file held then (size, sha256). ``mirror verify`` compares those rows too.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from _defs import definition
from _mirror_support import events, runs
from dagster import ReexecutionOptions, execute_job
from dagster._core.storage.tags import PARENT_RUN_ID_TAG, ROOT_RUN_ID_TAG
from sqlalchemy import select

from maestro_dagster.db.models import Artifact
from maestro_dagster.db.session import get_db
from maestro_dagster.executions import recon_job
from maestro_dagster.mirror import mirror_run
from maestro_dagster.settings import get_settings
from maestro_dagster.tags import TAG_EXECUTION_ID, TAG_TRIGGER

WRITE_RUN_ID = "import sys, pathlib; p = pathlib.Path(sys.argv[1]); p.parent.mkdir(parents=True, exist_ok=True); " \
    "p.write_text(sys.argv[2])"  # fmt: skip


def stamp(path: str) -> dict:
    """A command node that writes its run id into ``path`` and reports it."""
    return {"executor": "command", "config": {"args": [sys.executable, "-c", WRITE_RUN_ID, path, "{run_id}"],
                                              "artifacts": [path]}}  # fmt: skip


def reexecute_all(env, parent_run_id: str, execution_id: str, workflow_id: str) -> str:
    """Dagster's "Re-execute all" of ``parent_run_id`` (every step again), from this process."""
    parent = env.instance.get_run_by_id(parent_run_id)
    tags = {TAG_EXECUTION_ID: execution_id, TAG_TRIGGER: "ui", PARENT_RUN_ID_TAG: parent_run_id,
            ROOT_RUN_ID_TAG: parent.root_run_id or parent_run_id}  # fmt: skip
    run_config = {**(parent.run_config or {}), "execution": {"config": {"in_process": {}}}}
    options = ReexecutionOptions(parent_run_id=parent_run_id)  # no step selection: all steps
    with execute_job(
        recon_job(workflow_id), instance=env.instance, run_config=run_config, tags=tags, reexecution_options=options
    ) as result:
        assert result.success
        run_id = result.run_id
    mirror_run(env.instance, run_id, env.settings)
    return run_id


def artifact_rows(settings, execution_id: str) -> list[Artifact]:
    with get_db(settings) as session:
        stmt = select(Artifact).where(Artifact.execution_id == execution_id)
        return sorted(session.scalars(stmt), key=lambda a: (a.node_id, a.created_at))


def sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_reexecute_all_keeps_each_runs_artifacts(maestro_env):
    maestro_env.add_definition(
        definition(
            "rerun_flow",
            {"stamp": stamp("{artifacts_dir}/stamp.txt"), "doc": {"executor": "phase", "config": {"phase": "design"}}},
            [("stamp", "doc")],
        )
    )
    settings = maestro_env.settings
    first = maestro_env.run("rerun_flow")
    assert first.success
    first_rows = {(a.node_id, a.file_path, a.sha256) for a in artifact_rows(settings, first.execution_id)}
    second = reexecute_all(maestro_env, first.run_id, first.execution_id, "rerun_flow")
    execution_id = first.execution_id
    assert [r.run_id for r in runs(settings, execution_id)] == [first.run_id, second]  # the same execution

    rows = artifact_rows(settings, execution_id)
    assert [(a.node_id, a.dagster_run_id) for a in rows] == [
        ("doc", first.run_id), ("doc", second), ("stamp", first.run_id), ("stamp", second),
    ]  # fmt: skip
    for a in rows:
        assert Path(a.file_path) == settings.artifacts_dir / execution_id / a.dagster_run_id / a.node_id / a.name
        assert (a.sha256, a.size_bytes) == (sha256(a.file_path), Path(a.file_path).stat().st_size)  # file unchanged
        if a.node_id == "stamp":
            assert Path(a.file_path).read_text() == a.dagster_run_id
    assert first_rows <= {(a.node_id, a.file_path, a.sha256) for a in rows}  # the first run's rows, as they were

    created = [e for e in events(settings, execution_id) if e.event_type.value == "artifact_created"]
    assert sorted((e.dagster_run_id, e.data["path"]) for e in created) == sorted(
        (a.dagster_run_id, a.file_path) for a in rows
    )
    assert maestro_env.verify(execution_id) == []


def test_a_fixed_path_written_by_two_runs_keeps_a_row_per_run(maestro_env, tmp_path, monkeypatch):
    shared = tmp_path / "reports"
    monkeypatch.setenv("MAESTRO_ARTIFACT_ROOTS", str(shared))  # a node may report files there
    get_settings.cache_clear()
    report = shared / "latest.txt"
    maestro_env.add_definition(definition("fixed_flow", {"stamp": stamp(str(report))}, []))
    settings = maestro_env.settings
    first = maestro_env.run("fixed_flow")
    assert first.success
    second = reexecute_all(maestro_env, first.run_id, first.execution_id, "fixed_flow")

    rows = artifact_rows(settings, first.execution_id)
    assert [(a.file_path, a.dagster_run_id) for a in rows] == [(str(report), first.run_id), (str(report), second)]
    assert [a.sha256 for a in rows] == [hashlib.sha256(r.encode()).hexdigest() for r in (first.run_id, second)]
    assert report.read_text() == second  # the file is the latest run's; the first run's row still says its content
    assert maestro_env.verify(first.execution_id) == []
