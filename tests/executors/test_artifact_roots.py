"""Reported artifacts must be inside settings.artifact_roots (the artifacts directory plus MAESTRO_ARTIFACT_ROOTS),
by real path: checked in ``invoke`` for every executor, and through a real Dagster run into the tables."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
from _executors_support import make_ctx, make_input
from sqlalchemy import select

from maestro_dagster.db.models import Artifact, NodeState
from maestro_dagster.db.session import get_db
from maestro_dagster.errors import ExecutorError
from maestro_dagster.executors import invoke, resolve_executor
from maestro_dagster.policy import ExecutorPolicy
from maestro_dagster.settings import Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # maestro_examples lives at the repository root
    sys.path.insert(0, str(REPO_ROOT))
POLICY = ExecutorPolicy.allowing("maestro_examples")


def report(settings: Settings, *paths: str) -> dict:
    """Run the example executor ``echo`` reporting ``paths`` as its artifacts, through ``invoke``."""
    node_input = make_input(config={"output": {"artifacts": list(paths)}})
    return invoke(resolve_executor("maestro_examples.nodes:echo", POLICY), node_input, make_ctx(settings))


@pytest.fixture
def settings() -> Settings:
    settings = load_settings()
    settings.artifacts_dir.mkdir(parents=True)
    return settings


@pytest.mark.parametrize("path", ["/etc/shadow", "/etc/passwd", "/proc/self/environ", "~/.ssh/id_rsa"])
def test_a_path_outside_the_roots_fails_the_node(settings: Settings, path: str) -> None:
    with pytest.raises(ExecutorError) as info:
        report(settings, str(settings.artifacts_dir / "fine.txt"), path)
    message = str(info.value)
    assert f"reported the artifact {path!r}" in message and "MAESTRO_ARTIFACT_ROOTS" in message
    assert str(settings.artifacts_dir) in message and info.value.details["artifact"] == path


def test_symlinks_and_dotdot_are_resolved_before_the_check(settings: Settings, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (settings.artifacts_dir / "link").symlink_to(secret)
    (settings.artifacts_dir / "dir").symlink_to(tmp_path)
    for path in (
        settings.artifacts_dir / "link",
        settings.artifacts_dir / "dir" / "secret.txt",
        f"{settings.artifacts_dir}/../../secret.txt",
        f"{settings.artifacts_dir}_evil/x.txt",  # a sibling sharing the prefix is not inside
    ):
        with pytest.raises(ExecutorError, match="outside the artifact roots"):
            report(settings, str(path))


def test_paths_inside_are_recorded_by_real_path(settings: Settings) -> None:
    real = settings.artifacts_dir / "exec" / "report.md"
    real.parent.mkdir()
    real.write_text("ok")
    (settings.artifacts_dir / "latest").symlink_to(real)
    out = report(settings, str(real), str(settings.artifacts_dir / "latest"), f"{real.parent}/../exec/report.md")
    assert out["artifacts"] == [str(real)] * 3


def test_maestro_artifact_roots_adds_directories(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    reports, exports = tmp_path / "reports", tmp_path / "exports"
    monkeypatch.setenv("MAESTRO_ARTIFACT_ROOTS", f"{reports}, {exports}")
    settings = load_settings()
    out = report(settings, str(reports / "a.txt"), str(exports / "b" / "c.txt"), str(settings.artifacts_dir / "d"))
    assert out["artifacts"] == [str(reports / "a.txt"), str(exports / "b" / "c.txt"), str(settings.artifacts_dir / "d")]
    with pytest.raises(ExecutorError, match="outside the artifact roots"):
        report(settings, str(tmp_path / "elsewhere.txt"))


def test_command_artifacts_relative_to_cwd(monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Path) -> None:
    command = resolve_executor("command", POLICY)
    work = tmp_path / "work"
    work.mkdir()
    config = {"args": [sys.executable, "-c", "open('out.txt', 'w').write('x')"], "cwd": str(work)}
    with pytest.raises(ExecutorError, match=r"reported the artifact .*out\.txt.*MAESTRO_ARTIFACT_ROOTS"):
        invoke(command, make_input(config={**config, "artifacts": ["*.txt"]}), make_ctx(settings))
    in_artifacts = {**config, "cwd": "{artifacts_dir}", "artifacts": ["*.txt"]}
    ctx = make_ctx(settings)
    assert invoke(command, make_input(config=in_artifacts), ctx)["artifacts"] == [str(ctx.artifacts_dir / "out.txt")]
    monkeypatch.setenv("MAESTRO_ARTIFACT_ROOTS", str(work))
    out = invoke(command, make_input(config={**config, "artifacts": ["*.txt"]}), make_ctx(load_settings()))
    assert out["artifacts"] == [str(work / "out.txt")]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_run_reporting_a_host_file_fails_and_records_nothing(maestro_env) -> None:
    maestro_env.add_definition(
        {
            "id": "artifact_escape",
            "nodes": {
                "steal": {
                    "executor": "maestro_examples.nodes:echo",
                    "config": {"output": {"artifacts": ["/etc/passwd"]}},
                },
                "fine": {"executor": "phase", "config": {"phase": "design"}},
            },
            "edges": [],
        }
    )
    launched = maestro_env.run("artifact_escape")
    assert not launched.success
    with get_db(maestro_env.settings) as session:
        states = {
            s.node_id: s for s in session.scalars(select(NodeState).filter_by(execution_id=launched.execution_id))
        }
        artifacts = list(session.scalars(select(Artifact).filter_by(execution_id=launched.execution_id)))
    assert states["steal"].status.value == "failed"
    assert (
        "'/etc/passwd'" in states["steal"].error_message and "MAESTRO_ARTIFACT_ROOTS" in states["steal"].error_message
    )
    assert states["fine"].status.value == "completed"  # the phase built-in writes inside the artifacts directory
    assert [a.node_id for a in artifacts] == ["fine"]
    (recorded,) = artifacts
    assert Path(recorded.file_path).is_relative_to(maestro_env.settings.artifacts_dir)
    assert recorded.sha256 == hashlib.sha256(Path(recorded.file_path).read_bytes()).hexdigest()
