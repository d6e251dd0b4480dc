"""WebSockets: follow an execution to the end (each event once, in order), reconnect with ``?after=``, pongs, the
per-workflow stream, and a second API instance woken by PostgreSQL LISTEN/NOTIFY."""

from __future__ import annotations

import json
import time

import pytest
from _api_stack import TOKENS, ApiStack
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def receive(ws: ClientConnection, until: float) -> dict | None:
    """The next message, or None when the deadline passes first."""
    try:
        return json.loads(ws.recv(timeout=max(0.01, until - time.monotonic())))
    except TimeoutError:
        return None


def follow(ws: ClientConnection, execution_id: str, timeout: float) -> tuple[list[dict], int]:
    """Events of ``execution_id`` up to its ``workflow_completed`` (pongs counted apart)."""
    events, pongs, deadline = [], 0, time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = receive(ws, deadline)
        if message is None:
            break
        if message["type"] == "pong":
            pongs += 1
        elif message["execution_id"] == execution_id:
            events.append(message)
            if message["type"] == "workflow_completed":
                return events, pongs
    raise AssertionError(f"no workflow_completed for {execution_id} within {timeout}s; got {events}")


def drain(ws: ClientConnection, seconds: float) -> list[dict]:
    out, deadline = [], time.monotonic() + seconds
    while (message := receive(ws, deadline)) is not None:
        out.append(message)
    return out


def test_follow_reconnect_and_a_second_instance(api: ApiStack) -> None:
    # Instance B polls every 60 s: anything it streams within the run's lifetime was woken by NOTIFY.
    with connect(api.ws_url("/ws/workflow/api_echo", base=api.url_b), open_timeout=30) as on_b:
        connected = time.monotonic()
        started = api.execute("api_echo", {"via": "A"})
        execution_id = started["execution_id"]
        with connect(api.ws_url(f"/ws/executions/{execution_id}"), open_timeout=30) as ws:
            ws.send("ping")
            events, pongs = follow(ws, execution_id, timeout=120)
            ws.send("still there?")
            assert [m["type"] for m in drain(ws, 1.5)] == ["pong"], "after the end: a pong, nothing else"
        assert pongs >= 1
        b_events, _ = follow(on_b, execution_id, timeout=max(1.0, 55 - (time.monotonic() - connected)))
        assert time.monotonic() - connected < 58, "instance B saw the run only by polling"

    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids)), f"each event once, in id order: {ids}"
    types = [e["type"] for e in events]
    assert types[0] == "workflow_started" and types[-1] == "workflow_completed"
    assert types.count("workflow_completed") == 1 and types.count("node_completed") == 3
    assert {e["node_id"] for e in events if e["type"] == "node_started"} == {"extract", "transform", "report"}
    assert "artifact_created" in types
    with api.client("viewer") as client:
        stored = client.get(f"/api/executions/{execution_id}/events").json()
    assert [e["id"] for e in stored] == ids, "the stream is exactly the stored timeline"
    assert [e["id"] for e in b_events] == ids, "instance B streamed the same events"
    assert {e["workflow_id"] for e in b_events} == {"api_echo"}

    # Reconnect after some event: exactly the missing ones, then silence (plus a pong for any text).
    cut = len(ids) // 2
    with connect(api.ws_url(f"/ws/executions/{execution_id}", after=ids[cut]), open_timeout=30) as ws:
        rest = drain(ws, 2.0)
        assert [e["id"] for e in rest] == ids[cut + 1 :]
        ws.send("ping")
        pong = json.loads(ws.recv(timeout=10))
        assert pong["type"] == "pong" and "timestamp" in pong
        assert drain(ws, 0.5) == []


def test_websocket_refusals(api: ApiStack) -> None:
    """No or unknown token, unknown execution, bad ``after``: the handshake is refused (HTTP 403)."""
    base = api.url_a.replace("http://", "ws://")
    for url in (
        f"{base}/ws/workflow/api_echo",  # no token
        f"{base}/ws/executions/exec_nope_20260101_000000_00000000?token={TOKENS['viewer']}",  # unknown
        f"{base}/ws/workflow/api_echo?token=not-a-token",
        f"{base}/ws/workflow/api_echo?token={TOKENS['viewer']}&after=abc",
        f"{base}/ws/workflow/api_echo?token={TOKENS['viewer']}&after={2**64}",
    ):
        with pytest.raises(InvalidStatus) as caught, connect(url, open_timeout=10) as ws:
            ws.recv(timeout=10)
        assert caught.value.response.status_code == 403, url  # refused at the handshake
