"""Built-in and custom executors running inside compiled jobs, and the executor allowlist."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3

import pytest
from _compiler_support import ALLOWED, PY, failure_text, http_server, job_from_raw, output_metadata, result_of, run
from _defs import definition, echo
from dagster import DagsterEventType

from maestro_dagster.errors import DefinitionError
from maestro_dagster.executors.sql import dispose_engines as dispose_sql_engines
from maestro_dagster.policy import DefinitionPolicy
from maestro_dagster.settings import get_settings
from maestro_dagster.spec import parse_definition, validate_definition
from maestro_dagster.tags import META_ARTIFACTS, META_QUALITY, META_STATUS


def _one(node_id: str, node: dict, workflow_id: str = "exec_wf") -> dict:
    return definition(workflow_id, {node_id: node})


# ---- command ---------------------------------------------------------------------------------------
def test_command_runs_an_argument_list_without_a_shell(instance):
    code = "import sys; print('|'.join(sys.argv[1:]))"
    node = {"executor": "command", "config": {"args": [PY, "-c", code, "$HOME", "a;b", "*", "{node_id}"]}}
    result = run(_one("cmd", node), instance)
    assert result.success
    output = result_of(result, "cmd").output
    assert output["exit_code"] == 0
    assert output["stdout_tail"] == "$HOME|a;b|*|cmd\n"
    assert output["stderr_tail"] == ""
    assert output["duration_seconds"] >= 0


def test_command_nonzero_exit_fails_the_node(instance):
    code = "import sys; sys.stderr.write('no space left'); sys.exit(3)"
    result = run(_one("cmd", {"executor": "command", "config": {"args": [PY, "-c", code]}}), instance)
    assert not result.success
    text = failure_text(result, "cmd")
    assert "Node 'cmd': command exited with code 3 (allowed exit codes: [0])" in text
    assert "no space left" in text


# ---- http ------------------------------------------------------------------------------------------
def test_http_node_calls_a_real_server(instance, monkeypatch):
    monkeypatch.setenv("MAESTRO_HTTP_ALLOWED_HOSTS", "127.0.0.1")  # loopback is refused unless allowed
    get_settings.cache_clear()
    with http_server() as base:
        ok = run(_one("call", {"executor": "http", "config": {"url": f"{base}/status"}}), instance)
        bad = run(_one("call", {"executor": "http", "config": {"url": f"{base}/broken"}}), instance)
    assert ok.success
    output = result_of(ok, "call").output
    assert output["status_code"] == 200
    assert output["json"] == {"status": "ok", "version": "1.2.3"}
    assert not bad.success
    assert "returned status 500 (expected a 2xx status)" in failure_text(bad, "call")


def test_http_node_reads_a_file_url(instance, tmp_path, monkeypatch):
    monkeypatch.setenv("MAESTRO_HTTP_FILE_ROOT", str(tmp_path))  # file: URLs are off unless a root is set
    get_settings.cache_clear()
    data = tmp_path / "status.json"
    data.write_text(json.dumps({"status": "degraded", "checks": [1, 2]}))
    raw = definition(
        "file_url",
        {
            "read": {"executor": "http", "config": {"url": data.as_uri()}},
            "alert": {**echo(), "condition": "outputs['read']['json']['status'] != 'ok'"},
        },
        [("read", "alert")],
    )
    result = run(raw, instance)
    assert result.success
    assert result_of(result, "read").output["status_code"] == 200
    assert result_of(result, "read").output["json"] == {"status": "degraded", "checks": [1, 2]}
    assert result_of(result, "alert").status == "completed"


# ---- sql -------------------------------------------------------------------------------------------
def test_sql_node_queries_a_named_sqlite_connection(instance, tmp_path, monkeypatch):
    path = tmp_path / "reports.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE sales (region TEXT, amount INTEGER)")
        conn.executemany("INSERT INTO sales VALUES (?, ?)", [("eu", 10), ("eu", 5), ("us", 7)])
    conn.close()
    monkeypatch.setenv("MAESTRO_SQL_CONNECTIONS", json.dumps({"reports": f"sqlite:///{path}"}))
    get_settings.cache_clear()
    raw = definition(
        "sql_wf",
        {
            "total": {
                "executor": "sql",
                "config": {
                    "connection": "reports",
                    "statement": "SELECT region, SUM(amount) AS total FROM sales WHERE region = :r GROUP BY region",
                    "parameters": {"r": "eu"},
                },
            },
            "insert": {
                "executor": "sql",
                "config": {"connection": "reports", "statement": "INSERT INTO sales VALUES ('apac', 1)"},
            },
        },
        [("total", "insert")],
    )
    try:
        result = run(raw, instance)
    finally:
        dispose_sql_engines()
    assert result.success
    assert result_of(result, "total").output == {
        "rows": [{"region": "eu", "total": 15}],
        "row_count": 1,
        "columns": ["region", "total"],
        "truncated": False,
    }
    assert result_of(result, "insert").output == {"row_count": 1}
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM sales WHERE region = 'apac'").fetchone() == (1,)
    conn.close()


def test_sql_node_with_an_unknown_connection_fails_clearly(instance):
    node = {"executor": "sql", "config": {"connection": "nowhere", "statement": "SELECT 1"}}
    result = run(_one("q", node), instance)
    assert "unknown SQL connection 'nowhere'. Known connections: (none)." in failure_text(result, "q")  # none implicit


# ---- phase -----------------------------------------------------------------------------------------
def test_phase_node_writes_a_markdown_artifact_listed_in_output_metadata(instance, tmp_path):
    execution_id = "exec_phase_wf_20250101_120000_0123abcd"
    raw = definition(
        "phase_wf",
        {"analysis": {"type": "phase", "config": {"phase": "requirement_analysis"}}, "design": {"type": "phase"}},
        [("analysis", "design")],
    )
    result = run(
        raw, instance, {"requirement": "Users can reset their password."}, tags={"maestro/execution_id": execution_id}
    )
    assert result.success

    home = tmp_path / "home"
    expected = home / "artifacts" / execution_id / result.run_id / "analysis" / "requirement_analysis.md"  # per run
    assert expected.is_file()
    content = expected.read_text()
    assert content.startswith("# Phase: requirement_analysis\n")
    assert "User story US-1: as a user, I want to reset their password" in content
    assert f"- Execution: `{execution_id}`" in content

    meta = output_metadata(result, "analysis")
    assert meta[META_STATUS] == "completed"
    assert meta[META_ARTIFACTS] == [
        {
            "path": str(expected),
            "name": "requirement_analysis.md",
            "size_bytes": expected.stat().st_size,
            "sha256": hashlib.sha256(expected.read_bytes()).hexdigest(),
            "content_type": "text/markdown",
        }
    ]
    analysis = result_of(result, "analysis")
    assert meta[META_QUALITY] == analysis.output["quality_score"]
    assert analysis.artifacts == [str(expected)]

    design = result_of(result, "design")
    design_md = home / "artifacts" / execution_id / result.run_id / "design" / "design.md"
    assert design.artifacts == [str(design_md)]
    assert design.all_artifacts == {"analysis": [str(expected)], "design": [str(design_md)]}
    assert f"- `analysis`: `{expected}`" in design_md.read_text()  # dependency_artifacts reached the node


def test_phase_artifacts_without_an_execution_tag_go_under_an_id_derived_from_the_run(instance, tmp_path):
    result = run(_one("p", {"type": "phase"}, "derived"), instance, {"requirement": "Admins can ban users."})
    assert result.success
    (directory,) = (tmp_path / "home" / "artifacts").iterdir()
    assert re.fullmatch(r"exec_derived_\d{8}_\d{6}_[0-9a-f]{8}", directory.name)
    assert directory.name.endswith(result.run_id.replace("-", "")[:8])
    assert [p.name for p in (directory / result.run_id / "p").iterdir()] == ["p.md"]


# ---- custom executors ------------------------------------------------------------------------------
def test_async_custom_executor(instance):
    node = {"executor": "maestro_examples.nodes:async_echo", "config": {"seconds": 0.05}}
    result = run(_one("a", node), instance, {"x": 1})
    assert result.success
    assert result_of(result, "a").output == {
        "node_id": "a",
        "config": {"seconds": 0.05},
        "dependencies": [],
        "global_context": {"x": 1},
        "async": True,
    }


def test_write_file_artifact_and_quality_score_reach_metadata(instance, tmp_path, monkeypatch):
    monkeypatch.setenv("MAESTRO_ARTIFACT_ROOTS", str(tmp_path / "out"))  # artifacts must be inside the roots
    get_settings.cache_clear()
    target = tmp_path / "out" / "report.txt"
    node = {
        "executor": "maestro_examples.nodes:write_file",
        "config": {"path": str(target), "content": "hello", "quality_score": 0.75},
    }
    result = run(_one("w", node), instance)
    meta = output_metadata(result, "w")
    assert meta[META_QUALITY] == 0.75
    assert meta[META_ARTIFACTS][0]["size_bytes"] == 5
    assert meta[META_ARTIFACTS][0]["sha256"] == hashlib.sha256(b"hello").hexdigest()


@pytest.mark.parametrize(
    ("executor", "message"),
    [
        ("bad_return", "Node 'bad' (executor maestro_examples.nodes:bad_return) returned list, not a dict."),
        ("not_json", "Node 'bad' (executor maestro_examples.nodes:not_json) returned a dict that is not JSON"),
    ],
)
def test_non_dict_or_non_json_result_fails_the_node(instance, executor, message):
    result = run(_one("bad", {"executor": f"maestro_examples.nodes:{executor}"}), instance)
    assert not result.success
    assert message in failure_text(result, "bad")
    assert [e.step_key for e in result.all_events if e.event_type == DagsterEventType.STEP_OUTPUT] == []


# ---- allowlist -------------------------------------------------------------------------------------
def test_definition_naming_os_system_is_rejected():
    raw = _one("evil", {"executor": "os:system", "config": {"args": ["rm", "-rf", "/"]}})
    report = validate_definition(raw, policy=DefinitionPolicy.allowing(*ALLOWED))
    assert not report.ok
    assert report.codes == ["executor_not_allowed"]
    assert report.errors[0].node_id == "evil"
    with pytest.raises(DefinitionError) as excinfo:
        parse_definition(raw, policy=DefinitionPolicy.allowing(*ALLOWED))
    assert excinfo.value.details["errors"][0]["code"] == "executor_not_allowed"


def test_allowlist_narrowed_after_compile_fails_the_node_at_run_time(instance, monkeypatch):
    job = job_from_raw(_one("custom", echo()))
    monkeypatch.setenv("MAESTRO_EXECUTOR_ALLOWLIST", "maestro_dagster.executors")
    get_settings.cache_clear()
    result = run(job, instance)
    assert not result.success
    text = failure_text(result, "custom")
    assert "ExecutorNotAllowedError" in text
    assert (
        "executor 'maestro_examples.nodes:echo' is outside the allowlist MAESTRO_EXECUTOR_ALLOWLIST="
        "[maestro_dagster.executors] (its code is in module 'maestro_examples.nodes')"
    ) in text
