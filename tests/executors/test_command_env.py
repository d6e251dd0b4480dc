"""The command executor's child environment: minimal, never the parent's secrets unless an operator names them
(MAESTRO_COMMAND_ENV). Real subprocesses running ``env``."""

from __future__ import annotations

import json
import os

import pytest
from _executors_support import make_ctx, make_input

from maestro_dagster.executors.command import command_executor
from maestro_dagster.settings import API_SECRET_VARIABLES, load_settings, without_api_secrets

SECRETS = {
    "MAESTRO_API_TOKENS": json.dumps({"s3cret-admin-token": "admin"}),
    "MAESTRO_DATABASE_URL": "postgresql://maestro:db-pass@db.internal/maestro",
    "POSTGRES_PASSWORD": "pg-pass",
    "MAESTRO_SQL_CONNECTIONS": json.dumps({"reports": "postgresql://r:reports-pass@db.internal/r"}),
    "MAESTRO_DAGSTER_POSTGRES_URL": "postgresql://d:dagster-pass@db.internal/d",
    "DAGSTER_CLOUD_API_TOKEN": "dagster-token",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
}


def child_env(monkeypatch: pytest.MonkeyPatch, config: dict | None = None, **settings_env: str) -> dict[str, str]:
    """Run ``env`` as a command node with SECRETS in the parent's environment; the child's variables."""
    for name, value in {**SECRETS, **settings_env}.items():
        monkeypatch.setenv(name, value)
    out = command_executor(make_input(config={"args": ["env", "-0"], **(config or {})}), make_ctx(load_settings()))
    pairs = [item.split("=", 1) for item in out["stdout_tail"].split("\0") if item]
    return dict(pairs)


def test_a_command_child_sees_none_of_the_parents_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    env = child_env(monkeypatch)
    for name in SECRETS:
        assert name not in env, name
    assert not any(value in "\n".join(env.values()) for value in ("db-pass", "pg-pass", "s3cret", "aws-secret"))
    assert env["PATH"] == os.environ["PATH"] and env["HOME"] == os.environ["HOME"]
    assert env["MAESTRO_NODE_ID"] == "node_a" and env["MAESTRO_WORKFLOW_ID"] == "wf_test"
    assert {"MAESTRO_EXECUTION_ID", "MAESTRO_ATTEMPT", "MAESTRO_NODE_ARTIFACTS_DIR"} <= set(env)
    allowed = {"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER"}
    assert {n for n in env if not n.startswith("MAESTRO_")} <= allowed


def test_named_variables_pass_through_but_never_the_api_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPORT_BUCKET", "s3://reports")
    env = child_env(monkeypatch, MAESTRO_COMMAND_ENV="REPORT_BUCKET, POSTGRES_PASSWORD,MAESTRO_API_TOKENS,UNSET_X")
    assert env["REPORT_BUCKET"] == "s3://reports" and env["POSTGRES_PASSWORD"] == "pg-pass"  # named by an operator
    assert "MAESTRO_API_TOKENS" not in env and "UNSET_X" not in env
    assert "MAESTRO_DATABASE_URL" not in env


def test_the_nodes_own_env_is_applied_last(monkeypatch: pytest.MonkeyPatch) -> None:
    env = child_env(monkeypatch, {"env": {"GREETING": "hi-{node_id}", "HOME": None, "FLAG": True}})
    assert env["GREETING"] == "hi-node_a" and env["FLAG"] == "true" and "HOME" not in env


def test_a_shell_command_cannot_expand_a_parent_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    config = {"shell": True, "command": 'echo "[$POSTGRES_PASSWORD][$MAESTRO_API_TOKENS][$MAESTRO_DATABASE_URL]"'}
    out = command_executor(make_input(config=config), make_ctx(load_settings()))
    assert out["stdout_tail"] == "[][][]\n"


def test_without_api_secrets_drops_exactly_the_api_secrets() -> None:
    source = {**SECRETS, "PATH": "/bin"}
    kept = without_api_secrets(source)
    assert set(API_SECRET_VARIABLES) == {"MAESTRO_API_TOKENS"} and "MAESTRO_API_TOKENS" not in kept
    assert kept["MAESTRO_DATABASE_URL"] == SECRETS["MAESTRO_DATABASE_URL"]  # a run worker needs its database
