"""The http executor's egress rule (maestro_dagster.executors.egress) and its file: confinement, against real local
HTTP(S) servers on 127.0.0.1: refused by default, allowed by MAESTRO_HTTP_ALLOWED_HOSTS, redirects re-checked,
the connection pinned to the vetted address, TLS still verifying the URL's hostname."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from _executors_support import make_ctx, make_input

from maestro_dagster.errors import ConfigError, ExecutorError
from maestro_dagster.executors.egress import parse_allowed_hosts
from maestro_dagster.executors.http import http_executor
from maestro_dagster.settings import load_settings


@dataclass
class Server:
    """A real HTTP server in a thread: its base URL, port and the paths it was asked for."""

    base: str
    port: int
    hits: list[str] = field(default_factory=list)


@contextmanager
def server(host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> Iterator[Server]:
    record: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            record.append(self.path)
            url = urlparse(self.path)
            if url.path.startswith("/hop/"):  # /hop/3 -> /hop/2 -> ... -> /json
                left = int(url.path.rsplit("/", 1)[1])
                url = url._replace(path="/redirect", query=f"to=/hop/{left - 1}" if left else "to=/json")
            if url.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", parse_qs(url.query)["to"][0])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps({"path": url.path, "host": self.headers.get("Host")}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer((host, port), Handler)
    httpd.daemon_threads = True
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    port = int(httpd.server_address[1])
    scheme = "https" if tls else "http"
    try:
        yield Server(f"{scheme}://{host}:{port}", port, record)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def get(monkeypatch: pytest.MonkeyPatch, url: str, *, allow: str | None = None, **config: Any) -> dict:
    if allow is not None:
        monkeypatch.setenv("MAESTRO_HTTP_ALLOWED_HOSTS", allow)
    return http_executor(make_input(config={"url": url, **config}), make_ctx(load_settings(), "fetch"))


def refused(monkeypatch: pytest.MonkeyPatch, url: str, **kwargs: Any) -> str:
    with pytest.raises(ExecutorError) as info:
        get(monkeypatch, url, **kwargs)
    return str(info.value)


# ---- addresses ---------------------------------------------------------------------------------------------


def test_loopback_is_refused_by_default_and_never_contacted(monkeypatch: pytest.MonkeyPatch) -> None:
    with server() as srv:
        message = refused(monkeypatch, f"{srv.base}/json")
    assert message == (
        f"Node 'fetch': http to 127.0.0.1:{srv.port} refused: loopback addresses are not reachable from workflow "
        f"definitions unless MAESTRO_HTTP_ALLOWED_HOSTS allows them (e.g. MAESTRO_HTTP_ALLOWED_HOSTS="
        f"127.0.0.1:{srv.port})."
    )
    assert srv.hits == []


@pytest.mark.parametrize(
    "entry", ["127.0.0.1", "127.0.0.0/8", "127.0.0.1:{port}", "127.0.0.0/8:{port}", "::1, 127.0.0.1"]
)
def test_allowlisted_address_is_reached(monkeypatch: pytest.MonkeyPatch, entry: str) -> None:
    with server() as srv:
        out = get(monkeypatch, f"{srv.base}/json", allow=entry.format(port=srv.port))
    assert out["status_code"] == 200 and out["json"]["path"] == "/json"
    assert srv.hits == ["/json"]


def test_allowlist_entry_with_another_port_does_not_allow(monkeypatch: pytest.MonkeyPatch) -> None:
    with server() as srv:
        message = refused(monkeypatch, f"{srv.base}/json", allow=f"127.0.0.1:{srv.port + 1},10.0.0.0/8")
    assert "loopback addresses are not reachable" in message and srv.hits == []


def test_a_hostname_resolving_to_loopback_is_refused_and_allowed_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    with server() as srv:
        message = refused(monkeypatch, f"http://localhost:{srv.port}/json")
        assert f"http to localhost:{srv.port} (" in message and "loopback addresses" in message
        out = get(monkeypatch, f"http://LocalHost.:{srv.port}/json", allow="localhost")
    assert out["json"]["host"] == f"localhost.:{srv.port}"  # the request still names the host it was given
    assert srv.hits == ["/json"]


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local addresses (including the cloud metadata service"),
        ("http://[::1]:9/x", "loopback addresses"),
        ("http://[::ffff:127.0.0.1]:9/x", "loopback addresses"),
        ("http://[::ffff:169.254.169.254]/x", "link-local addresses"),
        ("http://0.0.0.0:9/x", "unspecified addresses"),
        ("http://[::]:9/x", "unspecified addresses"),
        ("http://10.1.2.3/x", "private addresses"),
        ("http://192.168.0.1/x", "private addresses"),
        ("http://100.64.0.1/x", "addresses that are not publicly routable"),
        ("http://224.0.0.1/x", "multicast addresses"),
        ("http://[fe80::1]/x", "link-local addresses"),
        ("http://2130706433:9/x", "loopback addresses"),  # 127.0.0.1 written as one number
    ],
)
def test_non_public_addresses_are_refused_before_connecting(
    monkeypatch: pytest.MonkeyPatch, url: str, kind: str
) -> None:
    message = refused(monkeypatch, url, timeout_seconds=60)
    assert "refused: " + kind in message and "MAESTRO_HTTP_ALLOWED_HOSTS" in message


def test_an_ipv4_allowlist_entry_covers_its_ipv4_mapped_form(monkeypatch: pytest.MonkeyPatch) -> None:
    with server() as srv:
        out = get(monkeypatch, f"http://[::ffff:127.0.0.1]:{srv.port}/json", allow="127.0.0.1")
    assert out["status_code"] == 200


def test_the_dagster_webserver_needs_an_entry_naming_its_port(monkeypatch: pytest.MonkeyPatch) -> None:
    with server() as dagster:
        monkeypatch.setenv("MAESTRO_DAGSTER_URL", f"http://localhost:{dagster.port}")
        for url in (f"{dagster.base}/graphql", f"http://localhost:{dagster.port}/graphql"):
            message = refused(monkeypatch, url, allow="127.0.0.0/8,localhost,::1")
            assert "it is the Dagster webserver (MAESTRO_DAGSTER_URL)" in message
            assert "even on a public address" in message and "names it with its port" in message
        assert dagster.hits == []
        out = get(monkeypatch, f"{dagster.base}/graphql", allow=f"127.0.0.1:{dagster.port}")
    assert out["status_code"] == 200 and dagster.hits == ["/graphql"]


def test_environment_proxies_are_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    with server() as proxy, server() as target:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy.base)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        get(monkeypatch, f"{target.base}/json", allow=f"127.0.0.1:{target.port}")
    assert target.hits == ["/json"] and proxy.hits == []


def test_the_connection_goes_to_the_vetted_address_not_a_second_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the name resolves to an allowed address when checked, to another one afterwards."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.test":
            lookups.append(host)
            return real("127.0.0.1" if len(lookups) == 1 else "127.0.0.2", *args, **kwargs)
        return real(host, *args, **kwargs)

    with server("127.0.0.1") as allowed, server("127.0.0.2", allowed.port) as rebound:
        monkeypatch.setattr(socket, "getaddrinfo", rebinding)
        try:
            out = get(monkeypatch, f"http://rebind.test:{allowed.port}/json", allow="127.0.0.1")
        finally:
            monkeypatch.setattr(socket, "getaddrinfo", real)
    assert out["status_code"] == 200 and allowed.hits == ["/json"]
    assert rebound.hits == [] and lookups == ["rebind.test"]


# ---- redirects ---------------------------------------------------------------------------------------------


def test_a_redirect_to_a_refused_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with server() as allowed, server() as internal:
        allow = f"127.0.0.1:{allowed.port}"
        message = refused(monkeypatch, f"{allowed.base}/redirect?to={internal.base}/secret", allow=allow)
        assert f"http to 127.0.0.1:{internal.port} refused: loopback addresses" in message
        message = refused(monkeypatch, f"{allowed.base}/redirect?to=http://169.254.169.254/latest/", allow=allow)
        assert "http to 169.254.169.254:80 refused: link-local addresses" in message
        message = refused(monkeypatch, f"{allowed.base}/redirect?to=file:///etc/passwd", allow=allow)
        assert "has the scheme 'file'" in message and "a redirect from" in message
        assert internal.hits == []
        out = get(monkeypatch, f"{allowed.base}/redirect?to=/json", allow=allow)
        assert out["status_code"] == 200 and out["json"]["path"] == "/json"
        not_followed = get(monkeypatch, f"{allowed.base}/redirect?to=/json", allow=allow, follow_redirects=False,
                           allow_status=[302])  # fmt: skip
        assert not_followed["status_code"] == 302


def test_more_than_five_redirects_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    with server() as srv:
        allow = f"127.0.0.1:{srv.port}"
        assert get(monkeypatch, f"{srv.base}/hop/4", allow=allow)["json"]["path"] == "/json"  # five redirects
        srv.hits.clear()
        message = refused(monkeypatch, f"{srv.base}/hop/5", allow=allow)
    assert "redirected more than 5 times" in message and "follow_redirects: false" in message
    assert srv.hits == ["/hop/5", "/hop/4", "/hop/3", "/hop/2", "/hop/1", "/hop/0"]  # the sixth is not followed


def test_only_http_and_https(monkeypatch: pytest.MonkeyPatch) -> None:
    for url in ("ftp://example.org/x", "gopher://127.0.0.1/", "dict://127.0.0.1:11211/stat"):
        assert "only http and https URLs" in refused(monkeypatch, url)


def test_bad_allowlist_entries_name_the_setting() -> None:
    for raw in ("127.0.0.1:http", "[::1]8080", "exa mple.org", "10.0.0.0/33", "host:70000"):
        with pytest.raises(ConfigError, match="MAESTRO_HTTP_ALLOWED_HOSTS: entry"):
            parse_allowed_hosts(raw)
    assert [e.port for e in parse_allowed_hosts("a.example, [::1]:8080 ,10.0.0.0/8:5432")] == [None, 8080, 5432]


# ---- TLS ---------------------------------------------------------------------------------------------------


@pytest.fixture
def tls_for_localhost(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    """A CA (made with the openssl CLI) and a server certificate for the name ``localhost`` only."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True, timeout=120)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=maestro test CA")
    openssl("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost")
    (tmp_path / "ext.cnf").write_text("subjectAltName=DNS:localhost\n")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "leaf.pem", "-days", "2", "-extfile", "ext.cnf")  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    return context, tmp_path / "ca.pem"


def test_tls_verifies_the_urls_hostname_on_the_pinned_connection(
    monkeypatch: pytest.MonkeyPatch, tls_for_localhost: tuple[ssl.SSLContext, Path]
) -> None:
    context, ca = tls_for_localhost
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    with server(tls=context) as srv:
        out = get(monkeypatch, f"https://localhost:{srv.port}/json", allow="localhost")
        assert out["status_code"] == 200 and out["json"]["host"] == f"localhost:{srv.port}"
        # Same server by its IP: the certificate names localhost only, so verification fails.
        message = refused(monkeypatch, f"https://127.0.0.1:{srv.port}/json", allow="127.0.0.1")
    assert "CERTIFICATE_VERIFY_FAILED" in message or "certificate verify failed" in message


# ---- file: -------------------------------------------------------------------------------------------------


def test_file_urls_are_off_without_a_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = tmp_path / "data.json"
    data.write_text("{}")
    for url in (data.as_uri(), "file:///etc/passwd", "file:///proc/self/environ"):
        message = refused(monkeypatch, url)
        assert "file: URLs are off" in message and "MAESTRO_HTTP_FILE_ROOT" in message


def test_file_urls_are_confined_to_the_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "data.json").write_text('{"rows": [1]}')
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    (root / "link_out").symlink_to(outside)
    (root / "dir_out").symlink_to(tmp_path)
    (root / "link_in").symlink_to(root / "sub" / "data.json")
    monkeypatch.setenv("MAESTRO_HTTP_FILE_ROOT", str(root))
    assert get(monkeypatch, (root / "sub" / "data.json").as_uri())["json"] == {"rows": [1]}
    assert get(monkeypatch, (root / "link_in").as_uri())["json"] == {"rows": [1]}  # a symlink staying inside
    for url in (
        outside.as_uri(),
        (root / "link_out").as_uri(),
        (root / "dir_out" / "outside.txt").as_uri(),
        f"file://{root}/sub/../../outside.txt",
        "file:///etc/passwd",
        "file:///proc/self/environ",
    ):
        message = refused(monkeypatch, url)
        assert f"is outside MAESTRO_HTTP_FILE_ROOT={root}" in message, url
        assert "secret" not in message
    monkeypatch.chdir(tmp_path)
    assert get(monkeypatch, "file:root/sub/data.json")["json"] == {"rows": [1]}  # relative to the working directory
    assert "outside MAESTRO_HTTP_FILE_ROOT" in refused(monkeypatch, "file:outside.txt")
    assert "only GET" in refused(monkeypatch, (root / "sub" / "data.json").as_uri(), method="POST")
    assert "not a regular file" in refused(monkeypatch, root.as_uri())
    assert os.environ["MAESTRO_HTTP_FILE_ROOT"] == str(root)
