"""``maestro defs validate|sync|show`` on real databases (SQLite and PostgreSQL through the ``db`` fixture)."""

from __future__ import annotations

import json
import re

import pytest
from _procs import ROOT

from maestro_dagster.cli import main as cli_main

FIXTURES = ROOT / "tests" / "fixtures" / "defs"
DEFINITION = """\
id: sync_me
nodes:
  a: {executor: noop}
  b: {executor: noop}
edges:
  - {source: a, target: b}
"""


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as excinfo:
        cli_main(list(args))
    out, err = capsys.readouterr()
    return excinfo.value.code or 0, out, err


def _sync_line(out: str, workflow_id: str) -> str:
    (line,) = [line for line in out.splitlines() if re.match(rf"^\S+\s+{re.escape(workflow_id)}\s", line)]
    return line


def test_validate_valid_files_exit_zero(capsys):
    files = [str(FIXTURES / "valid" / "diamond.yaml"), str(ROOT / "workflow_defs" / "sdlc_parallel.yaml")]
    code, out, _ = _cli(capsys, "defs", "validate", *files)
    assert code == 0
    assert f"ok       {files[1]}  (sdlc_parallel, 6 nodes)" in out.splitlines()


def test_validate_invalid_file_exits_1_and_prints_every_problem(capsys):
    bad = FIXTURES / "invalid" / "many_problems.yaml"
    good = FIXTURES / "valid" / "single_node.yaml"
    code, out, _ = _cli(capsys, "defs", "validate", str(good), str(bad))
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"ok       {good}")
    assert lines[1] == f"invalid  {bad}: 7 problem(s)"
    problems = lines[2:]
    assert len(problems) == 7
    codes = [re.search(r"\[(\w+)\]$", line).group(1) for line in problems]
    assert sorted(codes) == sorted(
        [
            "invalid_retry",
            "unknown_edge_node",
            "cycle",
            "dependency_mismatch",
            "unknown_executor",
            "executor_not_allowed",
            "bad_condition",
        ]
    )
    assert "  - edges (line 13): the graph has a cycle: a -> b -> c -> a" in out
    assert "executor 'os:system' is outside the allowlist" in out


def test_validate_reports_a_yaml_syntax_error(capsys):
    bad = FIXTURES / "invalid" / "yaml_syntax_error.yaml"
    code, out, _ = _cli(capsys, "defs", "validate", str(bad))
    assert code == 1
    assert "is not valid YAML at line" in out and "[syntax]" in out


def test_sync_twice_is_unchanged_then_an_edit_makes_version_2(db, tmp_path, capsys):
    directory = tmp_path / "defs"
    directory.mkdir()
    path = directory / "sync_me.yaml"
    path.write_text(DEFINITION)

    code, out, _ = _cli(capsys, "defs", "sync", "--dir", str(directory))
    assert code == 0
    assert re.match(r"^valid\s+sync_me\s+v1 stored\s", _sync_line(out, "sync_me"))
    assert out.splitlines()[-1] == "1 file(s), 0 invalid"

    code, out, _ = _cli(capsys, "defs", "sync", "--dir", str(directory))
    assert code == 0
    assert re.match(r"^valid\s+sync_me\s+v1 unchanged\s", _sync_line(out, "sync_me"))

    # formatting-only changes (comments, key order) keep the version: the content hash is canonical
    path.write_text("# a comment\n" + DEFINITION.replace("  a: {executor: noop}", "  a: {executor: 'noop'}"))
    code, out, _ = _cli(capsys, "defs", "sync", "--dir", str(directory))
    assert re.match(r"^valid\s+sync_me\s+v1 unchanged\s", _sync_line(out, "sync_me"))

    path.write_text(DEFINITION.replace("  b: {executor: noop}", "  b: {executor: noop, timeout_seconds: 30}"))
    code, out, _ = _cli(capsys, "defs", "sync", "--dir", str(directory))
    assert code == 0
    assert re.match(r"^valid\s+sync_me\s+v2 stored\s", _sync_line(out, "sync_me"))

    code, out, _ = _cli(capsys, "defs", "show", "sync_me")
    assert code == 0
    shown = json.loads(out)
    assert shown["id"] == "sync_me"
    assert shown["version"] == 2
    assert shown["valid"] is True
    assert shown["job"] == "sync_me"
    assert shown["errors"] in (None, [])
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    assert all(v["valid"] for v in shown["versions"])
    assert shown["definition"]["nodes"]["b"]["timeout_seconds"] == 30
    assert re.fullmatch(r"[0-9a-f]{64}", shown["content_hash"])

    code, out, _ = _cli(capsys, "defs", "list", "--json")
    assert [(i["id"], i["version"], i["valid"]) for i in json.loads(out)] == [("sync_me", 2, True)]


def test_sync_stores_an_invalid_file_with_its_errors_and_keeps_the_others(db, tmp_path, capsys):
    directory = tmp_path / "defs"
    directory.mkdir()
    (directory / "good.yaml").write_text(DEFINITION)
    (directory / "bad.yaml").write_text((FIXTURES / "invalid" / "many_problems.yaml").read_text())
    code, out, _ = _cli(capsys, "defs", "sync", "--dir", str(directory))
    assert code == 0
    assert re.match(r"^INVALID\s+many_problems\s+v1 stored\s", _sync_line(out, "many_problems"))
    assert out.splitlines()[-1] == "2 file(s), 1 invalid"

    code, out, _ = _cli(capsys, "defs", "show", "many_problems")
    shown = json.loads(out)
    assert shown["valid"] is False and shown["job"] is None
    assert len(shown["errors"]) == 7
    assert {e["code"] for e in shown["errors"]} >= {"cycle", "executor_not_allowed"}


def test_sync_without_a_directory_is_an_error(db, tmp_path, capsys):
    code, _, err = _cli(capsys, "defs", "sync", "--dir", str(tmp_path / "missing"))
    assert code == 1
    assert "is not a directory" in err


def test_show_unknown_workflow_is_an_error(db, capsys):
    code, _, err = _cli(capsys, "defs", "show", "no_such_workflow")
    assert code == 1
    assert "no_such_workflow" in err


def test_run_context_file_that_cannot_be_read_is_a_clear_error(db, capsys, tmp_path):
    for context in (f"@{tmp_path / 'missing.json'}", f"@{tmp_path}"):
        code, out, err = _cli(capsys, "run", "anything", "--context", context)
        assert code == 1, (out, err)
        assert "cannot read the file" in err and "Traceback" not in out + err
