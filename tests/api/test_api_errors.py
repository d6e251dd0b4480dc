"""Auth (401 / 403 by role), the audit log, error answers (422 with every problem, 404, 413, no stack traces), no
token in the server logs, and a Dagster refusal told without Dagster's text, against the real stack."""

from __future__ import annotations

import json

import httpx
import pytest
from _api_stack import MAX_BODY, TOKENS, ApiStack
from _procs import wait_for
from _served import mutating_calls
from sqlalchemy import func, select
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from maestro_dagster.api.auth import token_sha256
from maestro_dagster.db.models import ApiToken, AuditLog
from maestro_dagster.db.session import get_db
from maestro_dagster.defs_store import store_definition
from maestro_dagster.settings import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
UNKNOWN_EXEC = "exec_nope_20260101_000000_00000000"


def assert_error_body(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    body = response.json()
    assert set(body) == {"error", "message", "details"}, body
    assert isinstance(body["message"], str) and body["message"] and isinstance(body["details"], dict)
    assert "Traceback" not in response.text and 'File "' not in response.text
    if code:
        assert body["error"] == code, body
    return body


def audit_rows_after(settings: Settings, last_id: int) -> list[AuditLog]:
    with get_db(settings) as session:
        return list(session.scalars(select(AuditLog).where(AuditLog.id > last_id).order_by(AuditLog.id)))


def last_audit_id(settings: Settings) -> int:
    with get_db(settings) as session:
        return session.scalar(select(func.coalesce(func.max(AuditLog.id), 0))) or 0


def test_roles_and_the_audit_log(api: ApiStack, settings: Settings) -> None:
    start = last_audit_id(settings)
    calls = mutating_calls(api.url_a)
    with api.client(None) as anonymous:
        for method, _, path in calls:
            assert_error_body(anonymous.request(method, path, json={}), 401, "unauthorized")
        assert_error_body(anonymous.get("/api/workflows"), 401)  # reading needs a token too
        bad = anonymous.post("/api/workflows", json={}, headers={"Authorization": "Bearer wrong"})
        assert_error_body(bad, 401)
    with api.client("viewer") as viewer:
        assert_error_body(viewer.post("/api/workflows/api_echo/execute", json={}), 403, "forbidden")
        assert viewer.get("/api/workflows").status_code == 200
    with api.client("operator") as operator:
        assert_error_body(operator.post("/api/workflows", json={"id": "nope", "nodes": {}}), 403, "forbidden")
        assert_error_body(operator.delete("/api/workflows/api_echo"), 403, "forbidden")
        assert_error_body(operator.post(f"/api/executions/{UNKNOWN_EXEC}/cancel"), 404, "not_found")

    rows = audit_rows_after(settings, start)
    mutating = len(calls) + 1 + 1 + 2 + 1  # anonymous, bad token, viewer execute, operator create+delete, cancel
    assert len(rows) == mutating, [(r.actor, r.action, r.status_code) for r in rows]
    anonymous_rows = rows[: len(calls) + 1]
    assert {(r.actor, r.role, r.outcome, r.status_code) for r in anonymous_rows} == {("anonymous", None, "denied", 401)}
    assert [(r.action, r.target) for r in anonymous_rows[: len(calls)]] == [
        (f"{method} {route}", "/".join(["x"] * route.count("{")) or None) for method, route, _ in calls
    ]
    viewer_row, create_row, delete_row, cancel_row = rows[len(calls) + 1 :]
    assert (viewer_row.actor, viewer_row.role, viewer_row.action, viewer_row.target) == (
        "viewer-bot", "viewer", "POST /api/workflows/{workflow_id}/execute", "api_echo",
    )  # fmt: skip
    assert (viewer_row.outcome, viewer_row.status_code) == ("denied", 403)
    assert (create_row.actor, create_row.action, create_row.status_code) == ("operator-bot", "POST /api/workflows", 403)
    assert (delete_row.action, delete_row.target, delete_row.outcome) == (
        "DELETE /api/workflows/{workflow_id}", "api_echo", "denied",
    )  # fmt: skip
    assert (cancel_row.role, cancel_row.target, cancel_row.outcome, cancel_row.status_code) == (
        "operator", UNKNOWN_EXEC, "error", 404,
    )  # fmt: skip
    assert all(r.timestamp is not None for r in rows)


def test_tokens_stored_in_the_table_work_until_revoked(api: ApiStack, settings: Settings) -> None:
    with get_db(settings) as session:
        session.merge(ApiToken(token_sha256=token_sha256("db-token-1"), name="ci", role="viewer"))
    headers = {"Authorization": "Bearer db-token-1"}
    assert httpx.get(f"{api.url_a}/api/workflows", headers=headers, timeout=30).status_code == 200
    assert httpx.post(f"{api.url_a}/api/workflows/api_echo/execute", headers=headers, timeout=30).status_code == 403
    with get_db(settings) as session:
        session.get(ApiToken, token_sha256("db-token-1")).revoked_at = func.now()
    assert httpx.get(f"{api.url_a}/api/workflows", headers=headers, timeout=30).status_code == 401


def test_an_invalid_definition_gets_every_problem(api: ApiStack) -> None:
    definition = {
        "id": "api_broken",
        "nodes": {
            "a": {"executor": "noop", "retry_policy": {"max_attempts": 0}},
            "b": {"executor": "os:system"},
            "c": {"executor": "noop", "condition": "outputs['a'] ==="},
            "d": {"executor": "command", "config": {"args": ["true"]}},
        },
        "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "a"}, {"source": "c", "target": "ghost"}],
    }
    with api.client("admin") as admin:
        body = assert_error_body(admin.post("/api/workflows", json=definition), 422)
        errors = body["details"]["errors"]
        nodes = {e.get("node_id") for e in errors}
        assert {"a", "b", "c", "d"} <= nodes, errors
        assert len(errors) >= 5, errors
        assert any(e["code"] == "executor_not_allowed" and e["node_id"] == "d" for e in errors), errors
        assert any("ghost" in e["message"] for e in errors) and any("cycle" in e["message"].lower() for e in errors)
        assert all(e["message"] for e in errors)
        assert admin.get("/api/workflows/api_broken").status_code == 404, "nothing stored"
        dry = admin.post("/api/workflows/validate", json=definition).json()
        assert dry["valid"] is False and len(dry["errors"]) >= 4
        assert_error_body(admin.post("/api/workflows", json=["not", "an", "object"]), 422, "validation_error")
        not_json = admin.post("/api/workflows", content=b"{not json", headers={"content-type": "application/json"})
        assert_error_body(not_json, 422, "validation_error")
        assert_error_body(admin.post("/api/workflows/api_echo/execute", json={"requirement": 5}), 422)


def test_not_found_and_too_large(api: ApiStack) -> None:
    with api.client("admin") as admin:
        assert_error_body(admin.get("/api/workflows/no_such_workflow"), 404, "not_found")
        assert_error_body(admin.post("/api/workflows/no_such_workflow/execute", json={}), 404, "not_found")
        assert_error_body(admin.get(f"/api/executions/{UNKNOWN_EXEC}"), 404, "not_found")
        assert_error_body(admin.get(f"/api/executions/{UNKNOWN_EXEC}/events"), 404, "not_found")
        assert_error_body(admin.post(f"/api/executions/{UNKNOWN_EXEC}/resume"), 404, "not_found")
        assert_error_body(admin.get("/api/no/such/route"), 404, "not_found")
        # PostgreSQL text cannot hold NUL: a clear 422, not a 500 (found by schemathesis)
        assert_error_body(admin.get("/api/executions", params={"workflow_id": "a\x00b"}), 422, "validation_error")
        big = {"id": "api_big", "nodes": {"a": {"executor": "noop"}}, "description": "x" * (MAX_BODY + 1)}
        assert_error_body(admin.post("/api/workflows", json=big), 413, "request_too_large")

        def chunks():  # no Content-Length: the limit must hold for a streamed body too
            yield b'{"id": "api_big", "description": "'
            for _ in range(MAX_BODY // 1024 + 1):
                yield b"x" * 1024
            yield b'"}'

        streamed = admin.post("/api/workflows", content=chunks(), headers={"content-type": "application/json"})
        assert_error_body(streamed, 413, "request_too_large")
        assert admin.get("/api/workflows/api_big").status_code == 404
    assert TOKENS["admin"] not in streamed.text


def test_query_tokens_never_reach_the_server_logs(api: ApiStack) -> None:
    """``?token=`` works on WebSockets only, and ``maestro api`` (uvicorn's access and handshake lines) logs none."""
    refused = httpx.get(f"{api.url_a}/api/workflows", params={"token": TOKENS["viewer"]}, timeout=30)
    assert "Authorization: Bearer" in assert_error_body(refused, 401, "unauthorized")["message"]
    with connect(api.ws_url("/ws/workflow/api_echo", role="operator"), open_timeout=30) as ws:
        ws.send("ping")
        assert json.loads(ws.recv(timeout=30))["type"] == "pong"
    with pytest.raises(InvalidStatus), connect(api.ws_url("/ws/workflow/api_echo", after="x"), open_timeout=30) as ws:
        ws.recv(timeout=30)
    logs = [p.log for p in api.procs if p.name.startswith("api_")]

    def redacted() -> str | None:
        text = "\n".join(log.read_text(errors="replace") for log in logs)
        lines = ('"GET /api/workflows?token=[redacted] HTTP/1.1" 401',
                 '"WebSocket /ws/workflow/api_echo?token=[redacted]" [accepted]',
                 '"WebSocket /ws/workflow/api_echo?token=[redacted]&after=x" 403')  # fmt: skip
        return text if all(line in text for line in lines) else None

    text = wait_for(redacted, 15, "the API's log lines with the token redacted")
    assert not [role for role, token in TOKENS.items() if token in text], "a token in the API's log"


def test_a_job_dagster_has_not_loaded_is_a_generic_503(api: ApiStack, settings: Settings) -> None:
    """Stored behind Dagster's back (no code location reload): Dagster answers PipelineNotFoundError; the client
    reads what failed and what to do, Dagster's own text goes to the server log only."""
    definition = {"id": "api_unloaded", "nodes": {"a": {"executor": "noop"}}}
    with get_db(settings) as session:
        store_definition(session, definition, settings, source="test")
    log = next(p.log for p in api.procs if p.name == "api_a")
    logged_before = len(log.read_text(errors="replace"))
    with api.client("operator") as operator:
        response = operator.post("/api/workflows/api_unloaded/execute", json={"initial_context": {"k": "v"}})
    body = assert_error_body(response, 503, "dagster_unavailable")
    assert body["details"] == {"dagster_url": api.dagster_url, "reason": "PipelineNotFoundError"}, body
    assert body["message"].startswith(f"Could not launch job 'api_unloaded': the Dagster webserver at "
                                      f"{api.dagster_url} refused the request (PipelineNotFoundError). Dagster has "
                                      "not loaded this job: reload the code location"), body  # fmt: skip
    internal = ("query", "mutation", "variables", "Could not find", "maestro.maestro")
    assert not [t for t in internal if t in response.text], response.text

    def detail() -> bool:
        return "PipelineNotFoundError" in log.read_text(errors="replace")[logged_before:]

    wait_for(detail, 10, "Dagster's answer in the API's log")
