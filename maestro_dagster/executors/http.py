"""The ``http`` built-in executor: one HTTP request with httpx's synchronous client, inside the egress rule.

Config (``node_config``):
- ``url`` (required, ``http``/``https``), ``method`` (default ``GET``), ``headers``, ``params`` (added to the
  URL's query string),
  ``json`` (request body, sent as JSON), ``follow_redirects`` (default true; at most 5, each hop checked).
- ``timeout_seconds``: per-request timeout (default: the node's timeout, else 30 s); exceeding it raises
  ``NodeTimeoutError``.
- ``allow_status: [int, ...]``: when given, exactly these status codes are accepted; by default any 2xx is.
  Any other status raises ``ExecutorError`` naming the status and the tail of the body.

Output: ``{status_code, json, elapsed_seconds}`` when the response is JSON (by its content type), else
``{status_code, text, elapsed_seconds}`` with the last 4000 characters of the body.

Where a request may go is :mod:`maestro_dagster.executors.egress`'s rule: public addresses only (no loopback,
private, link-local or metadata address, nor the Dagster webserver) unless ``MAESTRO_HTTP_ALLOWED_HOSTS`` allows
them; the connection goes to the address that was checked; environment proxies are not used.

``file:`` URLs (GET only) read a local file instead, so a demo runs without a server, **only** when
``MAESTRO_HTTP_FILE_ROOT`` is set, and only files inside that directory (real path: symlinks and ``..``
resolved; relative paths are relative to the working directory): ``file:///root/dir/data.json`` gives
``{status_code: 200, json: <parsed>}`` if the file parses as JSON, else ``{status_code: 200, text: <tail>}``;
a missing file raises ``ExecutorError``. Unset, every ``file:`` URL is refused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from maestro_dagster.errors import ExecutorError, NodeTimeoutError
from maestro_dagster.executors.base import (
    ExecutorContext,
    NodeInput,
    NodeOutput,
    node_config,
    positive_number,
    resolve_inside,
    tail,
)
from maestro_dagster.settings import Settings

DEFAULT_TIMEOUT_SECONDS = 30.0
FILE_ROOT_SETTING = "MAESTRO_HTTP_FILE_ROOT"
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def http_executor(node_input: NodeInput, ctx: ExecutorContext) -> NodeOutput:
    """Make the configured request; see the module docstring for the config keys."""
    config = node_config(node_input)
    node_id = ctx.node_id
    url = config.get("url")
    if not isinstance(url, str) or not url.strip():
        raise _config_error(node_id, "url is required, e.g. url: https://example.org/api/status")
    method = str(config.get("method", "GET")).upper()
    if method not in _METHODS:
        raise _config_error(node_id, f"method {method!r} is not one of {sorted(_METHODS)}")
    timeout = (
        positive_number(config.get("timeout_seconds"), "timeout_seconds", node_id)
        or ctx.timeout_seconds
        or DEFAULT_TIMEOUT_SECONDS
    )
    allow_status = config.get("allow_status")
    if allow_status is not None and (
        not isinstance(allow_status, list)
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in allow_status)
    ):
        raise _config_error(node_id, f"allow_status must be a list of status codes, got {allow_status!r}")
    for key in ("headers", "params"):
        if config.get(key) is not None and not isinstance(config[key], Mapping):
            raise _config_error(node_id, f"{key} must be a mapping")

    if urlparse(url).scheme.lower() == "file":
        if method != "GET":
            raise _config_error(node_id, f"file:// URLs support only GET, not {method}")
        return _read_file_url(url, node_id, ctx.settings)

    # Here, not at module level: a run worker whose workflow makes no HTTP calls never loads httpx.
    import httpx

    from maestro_dagster.executors import egress

    egress.check_scheme(url, node_id)
    policy = egress.EgressPolicy.from_settings(ctx.settings)
    ctx.log.info("node %s: HTTP %s %s", node_id, method, url)
    started = time.monotonic()
    try:
        with egress.client(policy, node_id, timeout) as client:
            params = {str(k): _param(v) for k, v in (config.get("params") or {}).items()}
            request = client.build_request(
                method,
                httpx.URL(url).copy_merge_params(params) if params else url,  # keeps the URL's own query
                headers={str(k): str(v) for k, v in (config.get("headers") or {}).items()},
                json=config.get("json"),
            )
            follow = bool(config.get("follow_redirects", True))
            response = egress.send(client, request, follow_redirects=follow, node_id=node_id)
    except httpx.TimeoutException as exc:
        raise NodeTimeoutError(
            f"Node '{node_id}': HTTP {method} {url} exceeded its timeout of {timeout:g} seconds "
            f"({type(exc).__name__}). Raise timeout_seconds if the server needs longer.",
            details={"node_id": node_id, "url": url, "timeout_seconds": timeout},
        ) from exc
    except httpx.ConnectError as exc:
        raise ExecutorError(
            f"Node '{node_id}': cannot connect to {url} ({exc}). Is the server running and the URL right?",
            details={"node_id": node_id, "url": url},
        ) from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise ExecutorError(
            f"Node '{node_id}': HTTP {method} {url} failed: {type(exc).__name__}: {exc}",
            details={"node_id": node_id, "url": url},
        ) from exc
    elapsed = round(time.monotonic() - started, 3)

    status = response.status_code
    ok = status in allow_status if allow_status is not None else 200 <= status < 300
    if not ok:
        expected = f"one of {allow_status}" if allow_status is not None else "a 2xx status"
        raise ExecutorError(
            f"Node '{node_id}': HTTP {method} {url} returned status {status} (expected {expected}). "
            f"Body tail:\n{tail(response.text, 1000) or '(empty)'}",
            details={"node_id": node_id, "url": url, "status_code": status, "body_tail": tail(response.text)},
        )
    output: NodeOutput = {"status_code": status, "elapsed_seconds": elapsed}
    if "json" in response.headers.get("content-type", "").lower():
        try:
            output["json"] = response.json()
            return output
        except ValueError:
            pass  # says JSON but is not: report the text
    output["text"] = tail(response.text)
    return output


def _read_file_url(url: str, node_id: str, settings: Settings) -> NodeOutput:
    root = settings.http_file_root
    if root is None:
        raise ExecutorError(
            f"Node '{node_id}': file: URLs are off ({url}): an operator may set {FILE_ROOT_SETTING} to the one "
            "directory http nodes may read files from; otherwise serve the file over http(s).",
            details={"node_id": node_id, "url": url, "setting": FILE_ROOT_SETTING},
        )
    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise _config_error(node_id, f"file:// URL {url!r} names host {parsed.netloc!r}; use file:///absolute/path")
    path = resolve_inside(Path(url2pathname(unquote(parsed.path))), (root,))
    if path is None:
        raise ExecutorError(
            f"Node '{node_id}': file: URL {url} is outside {FILE_ROOT_SETTING}={root}: only files inside that "
            "directory (after resolving symlinks and '..') may be read.",
            details={"node_id": node_id, "url": url, "setting": FILE_ROOT_SETTING},
        )
    if path.exists() and not path.is_file():
        raise ExecutorError(f"Node '{node_id}': {url} is not a regular file.", details={"node_id": node_id, "url": url})
    started = time.monotonic()
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ExecutorError(
            f"Node '{node_id}': cannot read {url} ({exc.strerror or exc}).",
            details={"node_id": node_id, "url": url},
        ) from exc
    output: NodeOutput = {"status_code": 200, "elapsed_seconds": round(time.monotonic() - started, 3)}
    try:
        output["json"] = json.loads(text)
    except ValueError:
        output["text"] = tail(text)
    return output


def _param(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return [_param(v) for v in value]
    return value


def _config_error(node_id: str, problem: str) -> ExecutorError:
    return ExecutorError(f"Node '{node_id}': http config: {problem}.", details={"node_id": node_id})
