"""Node executors: built-ins against real subprocesses, a real HTTP server and real SQLite files; resolution
against the allowlist; ``invoke`` with sync/async callables and timeouts. No mocks."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _executors_support import http_server, make_ctx, make_input, write

from maestro_dagster.errors import ExecutorError, ExecutorNotAllowedError, NodeTimeoutError
from maestro_dagster.executors import (
    BUILTIN_EXECUTORS,
    NODE_INPUT_KEYS,
    invoke,
    resolve_executor,
)
from maestro_dagster.executors.command import command_executor
from maestro_dagster.executors.http import http_executor
from maestro_dagster.executors.noop import noop_executor
from maestro_dagster.executors.phase import SDLC_PHASES, phase_executor
from maestro_dagster.executors.sql import dispose_engines, sql_executor
from maestro_dagster.policy import ExecutorPolicy
from maestro_dagster.settings import Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # maestro_examples lives at the repository root
    sys.path.insert(0, str(REPO_ROOT))
PY = sys.executable
DEFAULT_PREFIXES = ("maestro_dagster.executors", "maestro_examples")


@pytest.fixture(autouse=True)
def _dispose_sql_engines() -> Iterator[None]:
    yield
    dispose_engines()


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    monkeypatch.setenv("MAESTRO_HOME", str(tmp_path))
    monkeypatch.setenv("MAESTRO_SQL_CONNECTIONS", json.dumps({"reports": f"sqlite:///{tmp_path / 'reports.db'}"}))
    return load_settings()


@pytest.fixture
def http_settings(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    """``settings`` with the local test server's address allowed (loopback is refused by default)."""
    monkeypatch.setenv("MAESTRO_HTTP_ALLOWED_HOSTS", "127.0.0.1")
    return load_settings()


def run_command(settings: Settings, config: dict, *, timeout: float | None = None) -> dict:
    return command_executor(make_input(config=config), make_ctx(settings, timeout=timeout))


# ---- command ----------------------------------------------------------------------------------------------


def test_command_success_captures_tails(settings: Settings) -> None:
    code = "import sys; print('x' * 5000); sys.stderr.write('warn')"
    out = run_command(settings, {"args": [PY, "-c", code]})
    assert out["exit_code"] == 0
    assert len(out["stdout_tail"]) == 4000 and out["stdout_tail"].endswith("x\n")
    assert out["stderr_tail"] == "warn"
    assert out["duration_seconds"] >= 0
    assert "artifacts" not in out


def test_command_failing_exit_code_raises_with_stderr(settings: Settings) -> None:
    code = "import sys; sys.stderr.write('boom happened'); sys.exit(3)"
    with pytest.raises(ExecutorError) as info:
        run_command(settings, {"args": [PY, "-c", code]})
    assert "code 3" in str(info.value) and "boom happened" in str(info.value)
    assert info.value.details["exit_code"] == 3


def test_command_allowed_exit_codes(settings: Settings) -> None:
    out = run_command(settings, {"args": [PY, "-c", "raise SystemExit(3)"], "allowed_exit_codes": [0, 3]})
    assert out["exit_code"] == 3


def test_command_timeout_kills_process_group(settings: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "written_after_timeout"
    child = f"import time, pathlib; time.sleep(1.5); pathlib.Path({str(marker)!r}).write_text('late')"
    parent = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(30)"
    started = time.monotonic()
    with pytest.raises(NodeTimeoutError) as info:
        run_command(settings, {"args": [PY, "-c", parent], "timeout_seconds": 0.5})
    assert time.monotonic() - started < 10
    assert "0.5 seconds" in str(info.value) and "timeout_seconds" in str(info.value)
    time.sleep(2.5)
    assert not marker.exists(), "the grandchild survived the timeout"


def test_command_uses_context_timeout_through_invoke(settings: Settings) -> None:
    resolved = resolve_executor("command", ExecutorPolicy.allowing(*DEFAULT_PREFIXES))
    assert resolved.enforces_own_timeout
    node_input = make_input(config={"args": [PY, "-c", "import time; time.sleep(30)"]})
    started = time.monotonic()
    with pytest.raises(NodeTimeoutError):
        invoke(resolved, node_input, make_ctx(settings, timeout=0.5))
    assert time.monotonic() - started < 10


def test_command_no_shell_unless_asked(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/maestro-test")
    out = run_command(settings, {"args": ["echo", "$HOME", "*", ";", "ls"]})
    assert out["stdout_tail"] == "$HOME * ; ls\n"
    out = run_command(settings, {"shell": True, "command": "echo $HOME; echo second"})
    assert out["stdout_tail"] == "/home/maestro-test\nsecond\n"
    with pytest.raises(ExecutorError, match="shell: true"):
        run_command(settings, {"command": "echo $HOME"})
    with pytest.raises(ExecutorError, match="args"):
        run_command(settings, {"args": "echo hi"})


def test_command_placeholders_env_cwd_and_artifacts(settings: Settings, tmp_path: Path) -> None:
    ctx = make_ctx(settings)
    code = (
        "import json, os, pathlib, sys; d = pathlib.Path(sys.argv[3]);"
        "(d / 'report.txt').write_text('r'); pathlib.Path('local.log').write_text('l');"
        "print(json.dumps([sys.argv[1:], os.environ['FOO'], os.environ['MAESTRO_NODE_ID'], os.getcwd()]))"
    )
    work = tmp_path / "work"
    work.mkdir()
    config = {
        "args": [PY, "-c", code, "{execution_id}", "{node_id}", "{artifacts_dir}", '{"a": 1}', "{unknown}"],
        "env": {"FOO": "bar-{node_id}"},
        "cwd": str(work),
        "artifacts": ["{artifacts_dir}/*.txt", "local.log", "missing/*.bin"],
    }
    out = command_executor(make_input(config=config), ctx)
    argv, foo, node_env, cwd = json.loads(out["stdout_tail"])
    artifacts_dir = str(ctx.artifacts_dir.resolve())
    assert argv == [ctx.execution_id, "node_a", artifacts_dir, '{"a": 1}', "{unknown}"]
    assert (foo, node_env, cwd) == ("bar-node_a", "node_a", str(work.resolve()))
    assert out["artifacts"] == [f"{artifacts_dir}/report.txt", str(work.resolve() / "local.log")]
    assert all(os.path.isabs(p) for p in out["artifacts"])


def test_command_missing_program_is_clear(settings: Settings) -> None:
    with pytest.raises(ExecutorError, match="not found"):
        run_command(settings, {"args": ["definitely-not-a-program-xyz"]})


# ---- http --------------------------------------------------------------------------------------------------


def run_http(settings: Settings, config: dict, *, timeout: float | None = None) -> dict:
    return http_executor(make_input(config=config), make_ctx(settings, timeout=timeout))


def test_http_get_json_with_params_and_headers(http_settings: Settings) -> None:
    settings = http_settings
    with http_server() as base:
        out = run_http(settings, {"url": f"{base}/json", "params": {"x": 1}, "headers": {"X-Test": "yes"}})
        kept = run_http(settings, {"url": f"{base}/json?a=b"})
        merged = run_http(settings, {"url": f"{base}/json?a=b", "params": {"x": 1}})
    assert out["status_code"] == 200
    assert out["json"] == {"path": "/json", "query": {"x": ["1"]}, "header": "yes"}
    assert kept["json"]["query"] == {"a": ["b"]} and merged["json"]["query"] == {"a": ["b"], "x": ["1"]}
    assert out["elapsed_seconds"] >= 0


def test_http_post_json_body_is_echoed(http_settings: Settings) -> None:
    settings = http_settings
    with http_server() as base:
        out = run_http(settings, {"method": "post", "url": f"{base}/echo", "json": {"a": [1, 2], "b": None}})
    assert out["status_code"] == 201
    assert out["json"] == {"received": {"a": [1, 2], "b": None}, "content_type": "application/json"}


def test_http_non_2xx_fails_and_allow_status(http_settings: Settings) -> None:
    settings = http_settings
    with http_server() as base:
        with pytest.raises(ExecutorError) as info:
            run_http(settings, {"url": f"{base}/status/500"})
        assert "status 500" in str(info.value) and "server says no" in str(info.value)
        out = run_http(settings, {"url": f"{base}/status/404", "allow_status": [404]})
        assert out == {"status_code": 404, "text": "server says no (404)", "elapsed_seconds": out["elapsed_seconds"]}
        with pytest.raises(ExecutorError, match="status 200"):
            run_http(settings, {"url": f"{base}/text", "allow_status": [404]})
        text = run_http(settings, {"url": f"{base}/text"})["text"]
        assert len(text) == 4000 and text.endswith("line\n")


def test_http_timeout(http_settings: Settings) -> None:
    settings = http_settings
    with http_server() as base, pytest.raises(NodeTimeoutError, match="timeout"):
        run_http(settings, {"url": f"{base}/slow", "timeout_seconds": 0.3})


def test_http_file_url(monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Path) -> None:
    monkeypatch.setenv("MAESTRO_HTTP_FILE_ROOT", str(tmp_path))  # file: URLs are off unless a root is set
    settings = load_settings()
    data = write(tmp_path / "data dir" / "data.json", '{"rows": [1, 2, 3]}')
    notes = write(tmp_path / "notes.txt", "plain text")
    out = run_http(settings, {"url": data.as_uri()})
    assert out["status_code"] == 200 and out["json"] == {"rows": [1, 2, 3]}
    assert run_http(settings, {"url": notes.as_uri()})["text"] == "plain text"
    with pytest.raises(ExecutorError, match="only GET"):
        run_http(settings, {"url": notes.as_uri(), "method": "POST"})
    with pytest.raises(ExecutorError, match="cannot read"):
        run_http(settings, {"url": (tmp_path / "missing.json").as_uri()})


def test_http_connection_refused_is_clear(http_settings: Settings) -> None:
    settings = http_settings
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ExecutorError, match=rf"cannot connect to http://127.0.0.1:{port}/x"):
        run_http(settings, {"url": f"http://127.0.0.1:{port}/x"})
    with pytest.raises(ExecutorError, match="url is required"):
        run_http(settings, {})


# ---- sql ---------------------------------------------------------------------------------------------------


def run_sql(settings: Settings, config: dict) -> dict:
    return sql_executor(make_input(config={"connection": "reports", **config}), make_ctx(settings))


def test_sql_parameters_are_bound_never_interpolated(settings: Settings) -> None:
    run_sql(settings, {"statement": "CREATE TABLE x (id INTEGER PRIMARY KEY, name TEXT)"})
    evil = "'); DROP TABLE x; --"
    out = run_sql(settings, {"statement": "INSERT INTO x (name) VALUES (:name)", "parameters": {"name": evil}})
    assert out == {"row_count": 1}
    rows = run_sql(settings, {"statement": "SELECT id, name FROM x WHERE name = :n", "parameters": {"n": evil}})
    assert rows == {"rows": [{"id": 1, "name": evil}], "row_count": 1, "columns": ["id", "name"], "truncated": False}


def test_sql_select_and_max_rows(settings: Settings) -> None:
    run_sql(settings, {"statement": "CREATE TABLE t (n INTEGER, d NUMERIC)"})
    for n in range(5):
        run_sql(settings, {"statement": "INSERT INTO t VALUES (:n, :d)", "parameters": {"n": n, "d": n / 2}})
    out = run_sql(settings, {"statement": "SELECT n FROM t ORDER BY n", "max_rows": 3})
    assert out == {"rows": [{"n": 0}, {"n": 1}, {"n": 2}], "row_count": 3, "columns": ["n"], "truncated": True}
    out = run_sql(settings, {"statement": "SELECT count(*) AS c FROM t"})
    assert out["rows"] == [{"c": 5}] and out["truncated"] is False
    updated = run_sql(settings, {"statement": "UPDATE t SET n = n + 10 WHERE n >= :m", "parameters": {"m": 3}})
    assert updated == {"row_count": 2}


def test_sql_errors_are_clear(settings: Settings) -> None:
    with pytest.raises(ExecutorError) as info:
        sql_executor(make_input(config={"connection": "nope", "statement": "SELECT 1"}), make_ctx(settings))
    message = str(info.value)
    assert "'nope'" in message and "Known connections: reports." in message and "MAESTRO_SQL_CONNECTIONS" in message
    with pytest.raises(ExecutorError, match="no such table"):
        run_sql(settings, {"statement": "SELECT * FROM missing_table"})
    with pytest.raises(ExecutorError, match="statement is required"):
        run_sql(settings, {})


def test_sql_reaches_only_named_connections_not_maestros_database(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = make_input(config={"connection": "maestro", "statement": "SELECT :v AS v", "parameters": {"v": "ok"}})
    with pytest.raises(ExecutorError, match=r"unknown SQL connection 'maestro'\. Known connections: reports"):
        sql_executor(node, make_ctx(settings))
    assert not settings.sqlite_file.exists()  # never opened
    named = {"maestro": f"sqlite:///{settings.sqlite_file}", "reports": "sqlite://"}
    monkeypatch.setenv("MAESTRO_SQL_CONNECTIONS", json.dumps(named))  # an operator names it: then it is reachable
    assert sql_executor(node, make_ctx(load_settings()))["rows"] == [{"v": "ok"}]
    assert settings.sqlite_file.exists()


# ---- noop and phase ----------------------------------------------------------------------------------------


def test_noop(settings: Settings) -> None:
    assert noop_executor(make_input(), make_ctx(settings)) == {"status": "completed"}
    out = noop_executor(make_input(config={"output": {"needs_backend": True}}), make_ctx(settings))
    assert out == {"status": "completed", "needs_backend": True}


REQUIREMENT = "Users can register with an email address. Users can reset their password. Admins see a dashboard."


PARALLEL_DEPS = {
    "design": ["requirement_analysis"],
    "backend_development": ["design"],
    "frontend_development": ["design"],
    "testing": ["backend_development", "frontend_development"],
    "review": ["testing"],
}


def run_phase(settings: Settings, node_id: str, phase: str, requirement: str | None, outputs: dict) -> dict:
    direct = [f"phase_{p}" for p in PARALLEL_DEPS.get(phase, [])]
    deps = {k: v for k, v in outputs.items() if k in direct}
    node_input = make_input(
        node_id,
        {"phase": phase},
        node_name=phase,
        dependency_outputs=deps,
        dependency_artifacts={k: v["artifacts"] for k, v in deps.items()},
        global_context={"requirement": requirement} if requirement else {"session_id": "s1"},
        all_outputs=outputs,
        all_artifacts={k: v["artifacts"] for k, v in outputs.items()},
    )
    return invoke(
        resolve_executor("phase", ExecutorPolicy.allowing(*DEFAULT_PREFIXES)), node_input, make_ctx(settings, node_id)
    )


def test_phase_writes_markdown_and_scores(settings: Settings) -> None:
    req = run_phase(settings, "phase_requirement_analysis", "requirement_analysis", REQUIREMENT, {})
    assert req["phase"] == "requirement_analysis" and req["status"] == "completed"
    assert req["contracts"] == [{"phase": "requirement_analysis", "provides": ["user_stories", "acceptance_criteria"]}]
    assert any("US-2" in d and "reset their password" in d for d in req["output"]["deliverables"])
    expected = make_ctx(settings, "phase_requirement_analysis").artifacts_dir / "requirement_analysis.md"
    assert req["artifacts"] == [str(expected.resolve())] and expected.is_file()
    design = run_phase(settings, "phase_design", "design", REQUIREMENT, {"phase_requirement_analysis": req})
    text = Path(design["artifacts"][0]).read_text()
    for section in (
        "# Phase: design",
        "## Original Requirement",
        "## Previous Phase Outputs",
        "## Available Artifacts",
        "## Previous Phase Contracts",
        "## Deliverables",
    ):
        assert section in text
    assert REQUIREMENT in text and req["artifacts"][0] in text and '"acceptance_criteria"' in text
    assert "### phase_requirement_analysis" in text and '"artifacts"' not in text.split("## Available")[0]
    assert "- [ ] Component `register-email-address`" in text
    assert 0 <= design["quality_score"] <= 1 and design["quality_score"] == 1.0


def test_phase_without_requirement_scores_lower(settings: Settings) -> None:
    with_req = run_phase(settings, "a", "requirement_analysis", REQUIREMENT, {})
    without = run_phase(settings, "b", "requirement_analysis", None, {})
    assert without["status"] == "completed"
    assert without["quality_score"] < with_req["quality_score"]
    assert "(none given)" in Path(without["artifacts"][0]).read_text()
    again = run_phase(settings, "b", "requirement_analysis", None, {})
    assert again["quality_score"] == without["quality_score"]  # deterministic


def test_phase_full_sdlc_chain_review_summarises_all(settings: Settings) -> None:
    outputs: dict = {}
    for phase in SDLC_PHASES:
        outputs[f"phase_{phase}"] = run_phase(settings, f"phase_{phase}", phase, REQUIREMENT, dict(outputs))
    review = outputs["phase_review"]["output"]["deliverables"]
    assert len(review) == 5 and all("status completed" in line for line in review)
    testing = outputs["phase_testing"]["output"]["deliverables"]
    assert any("GET /api/" in t for t in testing) and any(t.startswith("Acceptance test AC-1") for t in testing)


def test_phase_errors_propagate(settings: Settings) -> None:
    ctx = make_ctx(settings, "blocked")
    write(ctx.artifacts_dir, "a file where the directory should be")
    with pytest.raises(OSError):
        phase_executor(make_input("blocked", {"phase": "design"}), ctx)


# ---- resolve ----------------------------------------------------------------------------------------------


def test_resolve_builtins() -> None:
    assert set(BUILTIN_EXECUTORS) == {"noop", "command", "http", "sql", "phase", "human_review"}
    resolved = resolve_executor("noop", ExecutorPolicy.allowing())
    assert resolved.builtin and resolved.fn is noop_executor
    assert resolve_executor("noop", ExecutorPolicy.allowing()) is resolved  # cached
    for by_path in ("maestro_dagster.executors.noop:noop_executor", "maestro_dagster.executors:command_executor"):
        with pytest.raises(ExecutorNotAllowedError, match="only by their built-in name"):
            resolve_executor(by_path, ExecutorPolicy.allowing("maestro_dagster"))
    api = ExecutorPolicy.allowing(builtins={"noop"})
    assert resolve_executor("noop", api).fn is noop_executor
    with pytest.raises(ExecutorNotAllowedError, match="MAESTRO_API_BUILTIN_EXECUTORS"):
        resolve_executor("command", api)
    assert resolve_executor("human_review", ExecutorPolicy.allowing(*DEFAULT_PREFIXES)).enforces_own_timeout
    with pytest.raises(ExecutorError, match="neither a built-in kind"):
        resolve_executor("no-such-kind", ExecutorPolicy.allowing(*DEFAULT_PREFIXES))


def test_resolve_allowlist_accepts_and_refuses() -> None:
    resolved = resolve_executor("maestro_examples.nodes:echo", ExecutorPolicy.allowing(*["maestro_examples"]))
    assert not resolved.builtin and resolved.fn.__name__ == "echo"
    for ref in ("maestro_examples_evil.x:f", "os:system", "subprocess:run"):
        with pytest.raises(ExecutorNotAllowedError) as info:
            resolve_executor(ref, ExecutorPolicy.allowing(*["maestro_examples"]))
        assert "MAESTRO_EXECUTOR_ALLOWLIST" in str(info.value) and "add its package prefix" in str(info.value)
    with pytest.raises(ExecutorNotAllowedError, match=r"'posix'|'os'"):
        resolve_executor("maestro_examples.nodes:os.system", ExecutorPolicy.allowing(*["maestro_examples"]))
    with pytest.raises(ExecutorNotAllowedError, match="empty"):
        resolve_executor("maestro_examples.nodes:echo", ExecutorPolicy.allowing())
    assert not sys.modules.get("maestro_examples_evil")


def test_resolve_missing_and_non_callable() -> None:
    with pytest.raises(ExecutorError, match=r"'maestro_examples.nodes:nope'.*no attribute"):
        resolve_executor("maestro_examples.nodes:nope", ExecutorPolicy.allowing(*DEFAULT_PREFIXES))
    with pytest.raises(ExecutorError, match=r"'maestro_examples.missing:f'.*cannot be imported"):
        resolve_executor("maestro_examples.missing:f", ExecutorPolicy.allowing(*DEFAULT_PREFIXES))
    with pytest.raises(ExecutorError, match="not a callable"):
        resolve_executor("_executors_support:NOT_CALLABLE", ExecutorPolicy.allowing(*["_executors_support"]))


# ---- invoke ------------------------------------------------------------------------------------------------


def call(settings: Settings, ref: str, config: dict | None = None, *, timeout: float | None = None) -> dict:
    prefixes = [*DEFAULT_PREFIXES, "_executors_support"]
    node_input = make_input("n1", config, dependency_outputs={"up": {"v": 1}}, global_context={"requirement": "r"})
    return invoke(
        resolve_executor(ref, ExecutorPolicy.allowing(*prefixes)), node_input, make_ctx(settings, "n1", timeout=timeout)
    )


def test_invoke_sync_and_async(settings: Settings) -> None:
    out = call(settings, "maestro_examples.nodes:echo", {"k": 1, "output": {"quality_score": 0.5}})
    assert out == {
        "node_id": "n1",
        "config": {"k": 1, "output": {"quality_score": 0.5}},
        "dependencies": ["up"],
        "global_context": {"requirement": "r"},
        "quality_score": 0.5,
    }
    assert call(settings, "maestro_examples.nodes:echo", timeout=5)["node_id"] == "n1"
    out = call(settings, "maestro_examples.nodes:async_echo", {"seconds": 0.01}, timeout=5)
    assert out["async"] is True and out["dependencies"] == ["up"]
    assert call(settings, "_executors_support:returns_coroutine") == {"from": "coroutine"}
    assert set(make_input()) == set(NODE_INPUT_KEYS)


def test_invoke_async_inside_running_loop(settings: Settings) -> None:
    async def main() -> dict:
        return call(settings, "maestro_examples.nodes:async_echo")

    assert asyncio.run(main())["async"] is True


@pytest.mark.parametrize("ref", ["maestro_examples.nodes:sleep", "maestro_examples.nodes:async_echo"])
def test_invoke_timeout(settings: Settings, ref: str) -> None:
    started = time.monotonic()
    with pytest.raises(NodeTimeoutError) as info:
        call(settings, ref, {"seconds": 5}, timeout=0.3)
    assert time.monotonic() - started < 3
    assert "exceeded its timeout of 0.3 seconds" in str(info.value) and "timeout_seconds" in str(info.value)


@pytest.mark.parametrize("timeout", [None, 5])
def test_invoke_exceptions_propagate_unchanged(settings: Settings, timeout: float | None) -> None:
    with pytest.raises(RuntimeError, match="on purpose"):
        call(settings, "maestro_examples.nodes:fail", {"message": "broken on purpose"}, timeout=timeout)


def test_invoke_rejects_bad_results(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ExecutorError, match=r"'n1'.*returned list, not a dict"):
        call(settings, "maestro_examples.nodes:bad_return")
    with pytest.raises(ExecutorError, match=r"'n1'.*returned NoneType"):
        call(settings, "maestro_examples.nodes:bad_return", {"value": None})
    with pytest.raises(ExecutorError, match="not JSON-serialisable"):
        call(settings, "maestro_examples.nodes:not_json")
    with pytest.raises(ExecutorError, match="outside the artifact roots"):
        call(settings, "_executors_support:returns_relative_artifact")  # relative to a cwd outside them
    settings.artifacts_dir.mkdir(parents=True)
    monkeypatch.chdir(settings.artifacts_dir)
    out = call(settings, "_executors_support:returns_relative_artifact")
    assert out["artifacts"] == [str(settings.artifacts_dir / "relative/file.txt")]


def test_flaky_succeeds_on_third_attempt_across_processes(tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    code = (
        "import sys; from maestro_examples.nodes import flaky; "
        f"print(flaky({{'node_id': 'f', 'node_config': {{'counter_file': {str(counter)!r}}}}}))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    results = [subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True) for _ in range(3)]
    assert [r.returncode for r in results] == [1, 1, 0]
    assert "attempt 2 fails" in results[1].stderr
    assert "'attempts': 3" in results[2].stdout
