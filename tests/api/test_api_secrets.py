"""What the API shows of tokens and of Dagster, against a real server (uvicorn in this process, its log records read
as logged): ``?token=`` only on WebSockets and redacted in uvicorn's logs, callers named without token characters,
and a Dagster failure told in generic terms with its detail in the server log only."""

from __future__ import annotations

import hashlib
import json
import logging

import httpx
import pytest
from _procs import wait_for
from _served import DEFINITION, TOKENS, UNNAMED, Served
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

JSON = {"content-type": "application/json"}
UNNAMED_NAME = f"token-{hashlib.sha256(UNNAMED.encode()).hexdigest()[:8]}"
INTERNAL_TEXT = ("query", "mutation", "variables", "Errno", "hostname", "occured", "Traceback", "HTTPConnection",
                 "Max retries", "GraphQL")  # fmt: skip


def logged(caplog: pytest.LogCaptureFixture, logger: str | None = None) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if logger is None or r.name == logger)


def fragments(token: str, size: int = 4) -> set[str]:
    """Every run of ``size`` characters of the token."""
    return {token[i : i + size] for i in range(len(token) - size + 1)}


@pytest.fixture
def server_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in ("uvicorn.access", "uvicorn.error", "maestro_dagster"):
        caplog.set_level(logging.INFO, logger=name)
    return caplog


def test_query_tokens_only_on_websockets_and_never_in_the_log(served: Served, server_logs) -> None:
    served.store()
    viewer = TOKENS["viewer"]
    response = httpx.get(f"{served.url}/api/workflows", params={"token": viewer}, timeout=30)
    body = response.json()
    assert response.status_code == 401 and body["error"] == "unauthorized", response.text
    assert "WebSockets only" in body["message"] and "Authorization: Bearer" in body["message"], body
    with served.client("viewer") as client:  # with the header, a query token is ignored
        assert client.get("/api/workflows", params={"token": "garbage"}).status_code == 200
    with served.client(None) as anonymous:  # a form of it FastAPI would read as `token` is no token either
        assert anonymous.get(f"/api/workflows?%74oken={viewer}").status_code == 401

    with connect(served.ws_url(f"/ws/workflow/served?token={viewer}"), open_timeout=10) as ws:
        ws.send("ping")
        assert json.loads(ws.recv(timeout=10))["type"] == "pong"
    with pytest.raises(InvalidStatus), connect(served.ws_url(f"/ws/workflow/served?after=x&token={viewer}")) as ws:
        ws.recv(timeout=10)

    def redacted_lines() -> bool:
        access, handshakes = logged(server_logs, "uvicorn.access"), logged(server_logs, "uvicorn.error")
        return (
            "/api/workflows?token=[redacted]" in access
            and "/ws/workflow/served?token=[redacted]" in handshakes
            and "/ws/workflow/served?after=x&token=[redacted]" in handshakes
        )

    wait_for(redacted_lines, 10, f"uvicorn's log lines with the token redacted:\n{logged(server_logs)}")
    text = logged(server_logs)
    assert not any(token in text for token in TOKENS.values()), text


def test_a_token_without_a_name_is_shown_by_its_hash(served: Served, server_logs) -> None:
    served.store()
    start = served.last_audit_id()
    answers = []
    with served.client(None, Authorization=f"Bearer {UNNAMED}") as unnamed:
        answers.append(unnamed.post("/api/workflows/served/execute", json={}))
        answers.append(unnamed.post("/api/workflows", content=b"{not json", headers=JSON))
        answers.append(unnamed.delete("/api/workflows/served"))
        answers.append(unnamed.post("/api/nowhere"))
        answers.append(unnamed.get("/api/workflows"))
    answers.append(httpx.get(f"{served.url}/api/workflows?token={UNNAMED}", timeout=30))
    assert [a.status_code for a in answers] == [403, 403, 403, 404, 200, 401], [a.text for a in answers]
    assert answers[0].json()["message"] == f"{UNNAMED_NAME} has role viewer; this needs operator."
    with connect(served.ws_url(f"/ws/workflow/served?token={UNNAMED}"), open_timeout=10) as ws:
        ws.send("ping")
        ws.recv(timeout=10)

    rows = served.audit_rows_after(start)
    assert [(r.actor, r.role, r.status_code) for r in rows] == [
        (UNNAMED_NAME, "viewer", 403), (UNNAMED_NAME, "viewer", 403), (UNNAMED_NAME, "viewer", 403),
        (UNNAMED_NAME, "viewer", 404),
    ]  # fmt: skip
    shown = "\n".join(
        [*(a.text for a in answers), *(repr((r.actor, r.role, r.action, r.target, r.details)) for r in rows),
         logged(server_logs)]
    )  # fmt: skip
    assert not {f for f in fragments(UNNAMED) if f in shown}, shown


def test_dagster_failures_are_told_without_its_text(served: Served, server_logs) -> None:
    dagster = served.settings.dagster_url
    with served.client("admin") as admin:
        created = admin.post("/api/workflows", json=DEFINITION)  # stored, then the code location reload fails
        served_execution = admin.post("/api/workflows/served/execute", json={"initial_context": {"k": "v"}})
        executions = admin.get("/api/executions").json()
    for response, action in ((created, "reload the code location"), (served_execution, "launch job 'served'")):
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["error"] == "dagster_unavailable" and body["details"] == {"dagster_url": dagster,
                                                                             "reason": "unreachable"}  # fmt: skip
        assert body["message"].startswith(f"Could not {action}: the Dagster webserver at {dagster} could not be "
                                          "reached. Check that `dagster-webserver`"), body  # fmt: skip
        assert "MAESTRO_DAGSTER_URL" in body["message"], body
        assert not [t for t in INTERNAL_TEXT if t in response.text], response.text
    [execution] = executions
    with served.client("viewer") as viewer:
        status = viewer.get(f"/api/executions/{execution['execution_id']}").json()
    assert status["status"] == "failed" and "could not be reached" in status["error_message"], status
    assert not [t for t in INTERNAL_TEXT if t in status["error_message"]], status

    warnings = [r for r in server_logs.records if r.name == "maestro_dagster.executions.gateway"]
    assert len(warnings) == 2 and all(r.levelno == logging.WARNING for r in warnings), logged(server_logs)
    assert all("Connection refused" in r.getMessage() for r in warnings), "the detail: in the server log"
