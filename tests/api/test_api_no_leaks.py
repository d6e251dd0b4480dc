"""A viewer never reads a secret through a node: the end-to-end attack against the running stack.

An admin tries every way a definition could carry a secret or an internal service into node outputs (built-ins
by import path, ``command`` and ``sql`` over the API, ``http`` to ``file:``, to the Dagster webserver, to the API
itself, to the cloud metadata address); a trusted workflow from the repository dumps its child's environment.
Then a viewer reads everything the API serves about those executions, and no token or password is in it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import pytest
from _api_stack import CANARY_SECRET, TOKENS, ApiStack

from maestro_dagster.db.session import get_db
from maestro_dagster.defs_store import store_definition
from maestro_dagster.executions.gateway import DagsterGateway
from maestro_dagster.settings import get_settings

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def _one(workflow_id: str, node: dict[str, Any]) -> dict[str, Any]:
    return {"id": workflow_id, "nodes": {"attack": node}}


REFUSED_AT_CREATE = {
    "sec_command_by_path": {"executor": "maestro_dagster.executors.command:command_executor",
                            "config": {"args": ["id"]}},
    "sec_registry_reexport": {"executor": "maestro_dagster.executors:command_executor", "config": {"args": ["id"]}},
    "sec_sql_by_path": {"executor": "maestro_dagster.executors.sql:sql_executor",
                        "config": {"connection": "maestro", "statement": "SELECT * FROM api_tokens"}},
    "sec_command_builtin": {"executor": "command", "config": {"args": ["env"]}},
    "sec_sql_builtin": {"executor": "sql", "config": {"connection": "maestro", "statement": "SELECT 1"}},
    "sec_os_through_module": {"executor": "maestro_examples.nodes:os.system"},
    "sec_builtins_eval": {"executor": "builtins:eval"},
}  # fmt: skip


def _refused_at_run(api: ApiStack) -> dict[str, dict[str, Any]]:
    dagster = urlparse(api.dagster_url)
    return {
        "sec_http_environ": {"executor": "http", "config": {"url": "file:///proc/self/environ"}},
        "sec_http_passwd": {"executor": "http", "config": {"url": "file:///etc/passwd"}},
        "sec_http_graphql": {
            "executor": "http",
            "config": {
                "url": f"http://{dagster.hostname}:{dagster.port}/graphql",
                "method": "POST",
                "json": {"query": "{ version }"},
            },
        },
        "sec_http_localhost_api": {"executor": "http", "config": {"url": f"http://localhost:{api.port_a}/health"}},
        "sec_http_metadata": {
            "executor": "http",
            "config": {"url": "http://169.254.169.254/latest/meta-data/", "timeout_seconds": 3},
        },
    }


def _everything_a_viewer_reads(api: ApiStack, execution_ids: list[str]) -> str:
    parts = []
    with api.client("viewer") as viewer:
        for path in ("/api/workflows", "/api/executions?limit=500", "/metrics", "/health"):
            response = viewer.get(path)
            assert response.status_code == 200, (path, response.text)
            parts.append(response.text)
        for execution_id in execution_ids:
            for suffix in ("", "/events", "/artifacts"):
                response = viewer.get(f"/api/executions/{execution_id}{suffix}")
                assert response.status_code == 200, (execution_id, suffix, response.text)
                parts.append(response.text)
    return "\n".join(parts)


def test_a_viewer_never_reads_a_secret_through_any_node(api: ApiStack) -> None:
    with api.client("admin") as admin:
        for workflow_id, node in REFUSED_AT_CREATE.items():
            response = admin.post("/api/workflows", json=_one(workflow_id, node))
            assert response.status_code == 422, (workflow_id, response.text)
            codes = [e["code"] for e in response.json()["details"]["errors"]]
            assert codes == ["executor_not_allowed"], (workflow_id, codes)
        for workflow_id, node in _refused_at_run(api).items():
            response = admin.post("/api/workflows", json=_one(workflow_id, node))
            assert response.status_code == 201, (workflow_id, response.text)

    # A trusted workflow (a repository file may use `command`) that prints its child's whole environment.
    with get_db(get_settings(), immediate=True) as session:
        raw = _one("sec_env_dump", {"executor": "command", "config": {"args": ["env"]}})
        store_definition(session, raw, get_settings(), source="workflow_defs/sec_env_dump.yaml")[0].raise_if_invalid()
    DagsterGateway(api.dagster_url).reload_location()

    execution_ids = {}
    for workflow_id in [*_refused_at_run(api), "sec_env_dump"]:
        execution_ids[workflow_id] = api.execute(workflow_id)["execution_id"]
    for workflow_id, execution_id in execution_ids.items():
        wanted = "completed" if workflow_id == "sec_env_dump" else "failed"
        body = api.wait_status(execution_id, wanted, timeout=120)
        if wanted == "failed":
            error = {n["node_id"]: n for n in body["node_states"]}["attack"]["error"] or ""
            assert "refused" in error or "file: URLs are off" in error, (workflow_id, error)

    dumped = {n["node_id"]: n for n in api.execution(execution_ids["sec_env_dump"])["node_states"]}["attack"]
    child_env = dumped["outputs"]["stdout_tail"]
    assert "MAESTRO_WORKFLOW_ID=sec_env_dump" in child_env  # the dump really ran
    for name in ("MAESTRO_API_TOKENS", "MAESTRO_DATABASE_URL", "POSTGRES_PASSWORD", "DAGSTER_HOME"):
        assert f"{name}=" not in child_env, name

    text = _everything_a_viewer_reads(api, list(execution_ids.values()))
    assert all(execution_id in text for execution_id in execution_ids.values())  # the reads covered them
    for secret in (*TOKENS.values(), CANARY_SECRET):
        assert secret not in text, f"a viewer can read {secret[:6]}..."
    assert "root:x:0:0" not in text  # /etc/passwd
