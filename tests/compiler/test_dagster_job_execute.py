"""End to end as a user runs it: ``maestro db upgrade``, ``maestro defs sync``, then ``dagster job execute``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from _compiler_support import PROJECT_ROOT
from dagster import DagsterInstance, DagsterRunStatus
from sqlalchemy import create_engine, text

from maestro_dagster.executors.phase import SDLC_PHASES

BIN = Path(sys.executable).parent
TIMEOUT = 600  # a bound for a loaded machine; the run takes about 20 s alone
_SCRUBBED_PREFIXES = ("MAESTRO_", "POSTGRES_", "USE_SQLITE", "SQLITE_PATH", "DAGSTER_")


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def test_dagster_job_execute_runs_sdlc_parallel(tmp_path, monkeypatch):
    home = tmp_path / "home"
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env.update(MAESTRO_HOME=str(home), DAGSTER_HOME=str(dagster_home), DAGSTER_DISABLE_TELEMETRY="yes")

    upgrade = _run([sys.executable, "-m", "maestro_dagster", "db", "upgrade"], env)
    assert upgrade.returncode == 0, upgrade.stderr
    sync = _run([sys.executable, "-m", "maestro_dagster", "defs", "sync"], env)
    assert sync.returncode == 0, sync.stderr
    assert re.search(r"^valid\s+sdlc_parallel\s+v1 stored\s+workflow_defs/sdlc_parallel.yaml$", sync.stdout, re.M)

    requirement = "Users can reset their password. Admins can lock accounts."
    config = tmp_path / "run_config.yaml"
    config.write_text(yaml.safe_dump({"initial_context": {"requirement": requirement}}))
    execute = _run(
        [
            str(BIN / "dagster"),
            "job",
            "execute",
            "-m",
            "maestro_dagster.definitions",
            "-a",
            "maestro",
            "-j",
            "sdlc_parallel",
            "-c",
            str(config),
        ],
        env,
    )
    assert execute.returncode == 0, execute.stdout[-3000:] + execute.stderr[-3000:]

    (execution_dir,) = (home / "artifacts").iterdir()
    match = re.fullmatch(r"exec_sdlc_parallel_\d{8}_\d{6}_(?P<suffix>[0-9a-f]{8})", execution_dir.name)
    assert match, execution_dir.name
    (run_dir,) = execution_dir.iterdir()  # one directory per run of the execution
    files = sorted(p.relative_to(run_dir).as_posix() for p in execution_dir.rglob("*.md"))
    assert files == sorted(f"phase_{phase}/{phase}.md" for phase in SDLC_PHASES)
    for path in execution_dir.rglob("*.md"):
        text = path.read_text()
        assert text.startswith("# Phase: ")
        assert f"- Execution: `{execution_dir.name}`" in text
        assert "Users can reset their password." in text
    review = (run_dir / "phase_review" / "review.md").read_text()
    assert "Phase testing: status completed" in review

    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))  # as in every Dagster process: dagster.yaml reads it
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        (record,) = instance.get_run_records()
        run = record.dagster_run
        assert run.job_name == "sdlc_parallel"
        assert run.status == DagsterRunStatus.SUCCESS
        assert run.run_config == {"initial_context": {"requirement": requirement}}
        assert run.tags["maestro/workflow_id"] == "sdlc_parallel"
        assert run.tags["maestro/workflow_version"] == "1"
        # the execution id of a run launched without one is derived from the run
        assert run.run_id.replace("-", "")[:8] == match["suffix"]


def test_maestro_run_step_processes_hold_no_api_secret(tmp_path):
    # `maestro run` (multiprocess: each node in its own step process) from a shell that exports the API's tokens.
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    (probe_dir / "env_probe.py").write_text(
        "import os\n\ndef names(node_input):\n    return {'pid': os.getpid(), 'names': sorted(os.environ)}\n"
    )
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "probe.yaml").write_text("id: probe\nnodes:\n  look: {executor: 'env_probe:names'}\n")
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env.update(
        MAESTRO_HOME=str(home),
        MAESTRO_DEFS_DIR=str(defs),
        MAESTRO_EXECUTOR_ALLOWLIST="env_probe",
        MAESTRO_API_TOKENS='{"admin-secret-token-1": "admin"}',
        PYTHONPATH=str(probe_dir),
        DAGSTER_DISABLE_TELEMETRY="yes",
    )
    for args in (["db", "upgrade"], ["defs", "sync"], ["run", "probe"]):
        done = _run([sys.executable, "-m", "maestro_dagster", *args], env)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    engine = create_engine(f"sqlite:///{home / 'maestro_workflows.db'}")
    with engine.connect() as conn:
        (raw,) = conn.execute(text("SELECT outputs FROM node_states WHERE node_id = 'look'")).scalars()
    engine.dispose()
    output = json.loads(raw) if isinstance(raw, str) else raw
    assert "MAESTRO_HOME" in output["names"]  # the step process's own environment was read
    assert "MAESTRO_API_TOKENS" not in output["names"]
