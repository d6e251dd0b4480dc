"""Hostile input against a real server (uvicorn in this process, SQLite and PostgreSQL): JSON that parses but cannot
be stored (lone surrogates, NUL, NaN, deep nesting), bytes that are not UTF-8, odd path and query text, odd
Authorization headers: each a 4xx naming the problem, never a 5xx; and authentication before the body, on every
route, with the audit row naming the caller whatever the body."""

from __future__ import annotations

import httpx
import pytest
from _served import MAX_BODY, TOKENS, Served, mutating_calls
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

JSON = {"content-type": "application/json"}
SURROGATE = "lone surrogate U+D800"
# (raw body, what the 422 says, where): each is JSON Python's parser accepts
NODES = b'"nodes": {"a": {"executor": "noop"}}'
UNSTORABLE = [  # each a valid definition but for one value
    (rb'{"id": "served", "description": "\ud800", ' + NODES + b"}", SURROGATE, "body.description"),
    (b'{"id": "served", "description": "\xed\xa0\x80", ' + NODES + b"}", SURROGATE, "body.description"),  # raw bytes
    (rb'{"id": "served", "nodes": {"a": {"executor": "noop", "config": {"\ud800": 1}}}}',
     f"key: the text holds a {SURROGATE}", "body.nodes.a.config.\\ud800"),
    (rb'{"id": "served", "description": "a\u0000b", ' + NODES + b"}", "NUL character (U+0000)", "body.description"),
    (b'{"id": "served", "description": NaN, ' + NODES + b"}", "NaN is not a JSON number", "body.description"),
    (b'{"id": "served", "description": 1e999, ' + NODES + b"}", "Infinity is not a JSON number", "body.description"),
    (b'{"id": "served", "x": ' + b"[" * 300 + b"]" * 300 + b", " + NODES + b"}", "nested deeper than 256 levels",
     "body.x.0.0.0"),
]  # fmt: skip
UNREADABLE = [
    (b'{"id": "served", "description": "\xff", ' + NODES + b"}", "not UTF-8 (byte 0xff at position"),
    (b'{"id": "served", "n": ' + b"7" * 5000 + b", " + NODES + b"}", "more than 4300 digits"),
    (b"[" * 5000 + b"]" * 5000, "nested too deeply to read"),
]


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    body = response.json()
    assert set(body) == {"error", "message", "details"} and body["message"], body
    assert "Traceback" not in response.text
    if code:
        assert body["error"] == code, body
    return body


def body_calls(served: Served) -> list[tuple[str, str, str]]:
    """(method, path, how the body is wrapped) of every route taking a JSON body."""
    served.store()
    return [
        ("POST", "/api/workflows", "definition"),
        ("POST", "/api/workflows/validate", "definition"),
        ("PUT", "/api/workflows/served", "definition"),
        ("POST", "/api/workflows/served/execute", "initial_context"),
        ("POST", "/api/executions/exec_x/nodes/review/approve", "extra"),  # its fields: below
    ]


def wrapped(raw: bytes, how: str) -> bytes:
    """The raw document as the route's body: itself (a definition), or the value of a field of the body."""
    return raw if how == "definition" else b'{"' + how.encode() + b'": ' + raw + b"}"


def test_json_that_cannot_be_stored_is_a_422_naming_the_place(served: Served) -> None:
    with served.client("admin") as admin:
        for method, path, how in body_calls(served):
            for raw, says, where in UNSTORABLE:
                where = where.replace("body", f"body.{how}", 1) if how != "definition" else where
                body = assert_error(admin.request(method, path, content=wrapped(raw, how), headers=JSON), 422)
                assert body["error"] == "validation_error", body
                assert says in body["message"] and where in body["message"], (method, path, body)
                [error] = body["details"]["errors"]
                assert error["location"].startswith(where) and says in error["message"], body
            for raw, says in UNREADABLE:
                body = assert_error(admin.request(method, path, content=wrapped(raw, how), headers=JSON), 422)
                assert says in body["message"], (method, path, body)
        comment = rb'{"approved": false, "comment": "no \ud800"}'
        body = assert_error(admin.post("/api/executions/x/nodes/n/approve", content=comment, headers=JSON), 422)
        assert "body.comment" in body["message"] and SURROGATE in body["message"], body
        listed = admin.get("/api/workflows").json()
        assert [(w["workflow_id"], w["version"]) for w in listed] == [("served", 1)], "nothing stored or replaced"
        assert admin.get("/api/executions").json() == [], "no execution created"
        # a valid surrogate pair (U+1F600) is ordinary text
        valid = admin.post("/api/workflows/validate", content=rb'{"id": "served", "description": "\ud83d\ude00",'
                           rb' "nodes": {"a": {"executor": "noop"}}}', headers=JSON)  # fmt: skip
        assert valid.status_code == 200 and valid.json()["valid"] is True, valid.text


def test_odd_paths_queries_and_headers_get_no_server_error(served: Served) -> None:
    served.store()
    odd = ["%ED%A0%80", "%ff%fe", "%C0%80", "a%00b", "%F0%9F%98%80", "..%2F..%2Fetc", "x" * 2000]
    with served.client("admin") as admin:
        for text in odd:
            for path in (f"/api/workflows/{text}", f"/api/workflows/{text}/versions", f"/api/executions/{text}",
                         f"/api/executions/{text}/events", f"/api/executions/{text}/artifacts"):  # fmt: skip
                response = admin.get(path)
                assert response.status_code in (404, 422), f"GET {path}: {response.status_code} {response.text}"
            for method, path in (("POST", f"/api/executions/{text}/cancel"), ("DELETE", f"/api/workflows/{text}"),
                                 ("POST", f"/api/executions/x/nodes/{text}/approve")):  # fmt: skip
                response = admin.request(method, path)
                assert response.status_code in (404, 422), f"{method} {path}: {response.status_code} {response.text}"
            for query in (f"workflow_id={text}", f"status={text}", f"limit={text}", f"{text}={text}"):
                response = admin.get(f"/api/executions?{query}")
                assert response.status_code in (200, 422), f"?{query}: {response.status_code} {response.text}"
            url = served.ws_url(f"/ws/executions/{text}?token={TOKENS['viewer']}")
            with pytest.raises(InvalidStatus) as refused, connect(url) as ws:
                ws.recv(timeout=10)
            assert refused.value.response.status_code == 403
    # Header bytes outside ASCII (latin-1 to the server): an unknown token, not a crash
    for value in (b"Bearer \xe9t\xe9", b"Bearer \xff\xfe", "Bearer tök".encode()):
        response = httpx.get(f"{served.url}/api/workflows", headers={"Authorization": value}, timeout=30)
        assert_error(response, 401, "unauthorized")


def test_authentication_and_role_come_before_the_body(served: Served) -> None:
    calls = mutating_calls(served.url)
    start = served.last_audit_id()
    malformed = {"content": b"{not json", "headers": JSON}
    with served.client(None) as anonymous:
        for method, _, path in calls:
            assert_error(anonymous.request(method, path, **malformed), 401, "unauthorized")
        # a body over the limit: 401 first (nothing about the body is looked at before the token)
        big = {"content": b'{"id": "' + b"x" * MAX_BODY + b'"}', "headers": JSON}
        assert_error(anonymous.post("/api/workflows", **big), 401)
        assert_error(anonymous.get("/api/workflows", params={"limit": "abc"}), 401)
    with served.client("viewer") as viewer:
        for method, path in (("POST", "/api/workflows"), ("PUT", "/api/workflows/x"), ("POST", "/api/workflows/x/"
                             "execute"), ("POST", "/api/executions/x/nodes/n/approve")):  # fmt: skip
            assert_error(viewer.request(method, path, **malformed), 403, "forbidden")
    anonymous_and_viewer = served.audit_rows_after(start)
    assert {r.actor for r in anonymous_and_viewer[: len(calls) + 1]} == {"anonymous"}
    assert {(r.actor, r.status_code) for r in anonymous_and_viewer[len(calls) + 1 :]} == {("viewer-bot", 403)}

    start = served.last_audit_id()
    with served.client("admin") as admin:
        for method, _, path in calls:
            response = admin.request(method, path, **malformed)
            assert response.status_code in (404, 409, 422), f"{method} {path}: {response.text}"
        assert_error(admin.post("/api/workflows", **big), 413, "request_too_large")
        assert_error(admin.post("/api/no/such/route", **malformed), 404, "not_found")
        assert_error(admin.put("/api/workflows/x/versions", **malformed), 405)
    rows = served.audit_rows_after(start)
    assert len(rows) == len(calls) + 3, [(r.action, r.status_code) for r in rows]
    assert {(r.actor, r.role) for r in rows} == {("admin-bot", "admin")}, [(r.actor, r.action) for r in rows]
    assert [r.status_code for r in rows[-3:]] == [413, 404, 405]
