"""The web UI under ``/ui`` as ``maestro api`` serves it (SQLite and PostgreSQL): the shipped build with a strict
Content-Security-Policy and no inline script, every client route answered by the page, nothing outside the build
reachable through a crafted path, and ``/api/me`` telling the page who the caller is."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from _served import TOKENS

from maestro_dagster.api.ui import UI_DIST

ASSETS = re.compile(r'(?:src|href)="(/ui/assets/[^"]+)"')


def test_the_page_is_served_with_a_strict_policy(served):
    page = httpx.get(f"{served.url}/ui", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce and f'<meta name="csp-nonce" content="{nonce.group(1)}"' in page.text  # for the editor's styles
    again = httpx.get(f"{served.url}/ui", timeout=30).headers["content-security-policy"]
    assert again != csp  # a fresh nonce per answer
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text), "an inline script would need unsafe-inline"
    assets = ASSETS.findall(page.text)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        answer = httpx.get(f"{served.url}{asset}", timeout=30)
        assert answer.status_code == 200 and answer.content == (UI_DIST / asset.removeprefix("/ui/")).read_bytes()
        assert "immutable" in answer.headers["cache-control"]
        assert answer.headers["content-security-policy"].startswith("default-src 'self'")


@pytest.mark.parametrize("path", ["/ui/", "/ui/workflows/served", "/ui/executions/x?y=1"])
def test_every_client_route_is_the_page(served, path):
    answer = httpx.get(f"{served.url}{path}", timeout=30)
    assert answer.status_code == 200 and '<div id="root"></div>' in answer.text


@pytest.mark.parametrize(
    "path", ["/ui/%2e%2e/%2e%2e/%2e%2e/pyproject.toml", "/ui/..%2F..%2Fui.py", "/ui/assets/%2e%2e/%2e%2e/ui.py"]
)
def test_a_crafted_path_never_reaches_a_file_outside_the_build(served, path):
    # the attack: read the package's (or the machine's) files through the UI's static route
    answer = httpx.get(f"{served.url}{path}", timeout=30)
    assert answer.status_code in (200, 404)
    assert b"import" not in answer.content and b"[project]" not in answer.content


def test_api_me_names_the_caller_and_its_role(served):
    for role in ("viewer", "operator", "admin"):
        me = served.client(role).get("/api/me")
        assert me.status_code == 200 and me.json() == {
            "name": f"{role}-bot",
            "role": role,
            "open": False,
            "dagster_ui_url": served.settings.dagster_ui_url,
        }
    assert served.client(None).get("/api/me").status_code == 401


def test_a_browser_websocket_authenticates_by_subprotocol(served):
    # a browser cannot set a header on a WebSocket, and the token must stay out of the URL
    from websockets.exceptions import ConnectionClosed, InvalidStatus
    from websockets.sync.client import connect

    url = served.ws_url("/ws/workflow/served")
    with connect(url, subprotocols=["maestro.bearer", TOKENS["viewer"]], open_timeout=30) as ws:
        assert ws.subprotocol == "maestro.bearer"
        ws.send("ping")
        assert json.loads(ws.recv(timeout=30))["type"] == "pong"
    try:
        with connect(url, subprotocols=["maestro.bearer", "not-a-token"], open_timeout=30) as ws:
            ws.recv(timeout=30)
        raise AssertionError("an unknown token was let in")
    except ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == 1008
    except InvalidStatus as refused:
        assert refused.response.status_code == 403
