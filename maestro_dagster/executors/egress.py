"""Where the ``http`` executor may connect: the one egress rule for workflow definitions, and its enforcement.

A definition is untrusted input (docs/security.md), so an ``http`` node must not reach what only this host or its
network should: the Dagster webserver (its GraphQL launches runs with no API call and no audit row), the API,
databases' HTTP consoles, the cloud metadata service. The rule, ``EgressPolicy.vet``:

- Only ``http`` and ``https`` URLs (``check_scheme``; ``file:`` is the executor's own, confined to
  ``MAESTRO_HTTP_FILE_ROOT``).
- The host is resolved with ``socket.getaddrinfo``; the request is refused if **any** address it resolves to is
  unspecified, loopback, link-local (169.254.169.254 included), multicast, private, reserved, otherwise not
  publicly routable, or an address of this host (IPv4-mapped IPv6 addresses are judged as the IPv4 address they
  carry) -- unless an entry of ``MAESTRO_HTTP_ALLOWED_HOSTS`` allows it. An entry is a hostname, an IP or a CIDR,
  optionally with ``:port`` (``[v6]:port`` for IPv6): ``api.internal``, ``10.0.0.0/8``, ``127.0.0.1:8080``.
- The Dagster webserver's address (``MAESTRO_DAGSTER_URL``: its hostname, the addresses it resolves to, and any
  address of this host when it is local) with its port is refused **even when public**, and even when a
  port-less entry covers it: only an entry naming that port allows it. The API's address is not known to a run
  worker: it is refused when it is loopback, private or this host's (the usual deployment); an API elsewhere on
  a public address is reachable, but needs a token, which no node ever gets.

Enforcement: the client built by ``client`` connects through ``_VettingBackend``, an httpcore network backend
that vets the host at the moment it opens each TCP connection and then connects to the addresses it vetted
(no second DNS lookup that could be rebound); TLS still verifies the URL's hostname (SNI and certificate
check use the original host). Redirects are followed by ``send`` (at most ``MAX_REDIRECTS``): every hop's scheme
is checked and its connection vetted the same way. Environment proxies are never used (``trust_env=False``:
a proxy would connect on our behalf, past the rule); ``SSL_CERT_FILE``/``SSL_CERT_DIR`` still apply.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from maestro_dagster.errors import ConfigError, ExecutorError
from maestro_dagster.settings import Settings

ALLOWED_HOSTS_SETTING = "MAESTRO_HTTP_ALLOWED_HOSTS"
DAGSTER_URL_SETTING = "MAESTRO_DAGSTER_URL"
SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_REDIRECTS = 5

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_HOSTNAME_RE = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")
_NEVER_LOCAL = ipaddress.ip_address("192.0.2.1")  # TEST-NET-1: no host has it, so binding it must fail


@dataclass(frozen=True)
class AllowEntry:
    """One entry of ``MAESTRO_HTTP_ALLOWED_HOSTS``: a hostname or a network, and optionally a port."""

    text: str
    hostname: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    def allows(self, host: str, address: IPAddress, port: int, *, port_required: bool = False) -> bool:
        if (self.port is None and port_required) or (self.port is not None and self.port != port):
            return False
        if self.hostname is not None:
            return self.hostname == host
        return self.network is not None and self.network.version == address.version and address in self.network


def parse_allowed_hosts(raw: str) -> tuple[AllowEntry, ...]:
    """The entries of ``MAESTRO_HTTP_ALLOWED_HOSTS`` (comma separated); ``ConfigError`` naming a bad one."""
    return tuple(_parse_entry(part.strip()) for part in raw.split(",") if part.strip())


def _parse_entry(text: str) -> AllowEntry:
    host, port_text = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise _bad_entry(text, "write an IPv6 address with a port as [::1]:8080")
        port_text = rest[1:] or None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    port = None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise _bad_entry(text, f"{port_text!r} is not a port (1-65535)")
        port = int(port_text)
    try:
        network = ipaddress.ip_network(host, strict=False)
    except ValueError:
        name = _normal_host(host)
        if not _HOSTNAME_RE.match(name):
            problem = "an entry is a hostname, an IP address or a CIDR, each optionally with :port"
            raise _bad_entry(text, problem) from None
        return AllowEntry(text, hostname=name, port=port)
    mapped = getattr(network.network_address, "ipv4_mapped", None)
    if mapped is not None and network.prefixlen >= 96:  # ::ffff:10.0.0.0/104 is 10.0.0.0/8
        network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    return AllowEntry(text, network=network, port=port)


def _bad_entry(text: str, problem: str) -> ConfigError:
    return ConfigError(
        f"{ALLOWED_HOSTS_SETTING}: entry {text!r} cannot be used: {problem} (e.g. {ALLOWED_HOSTS_SETTING}="
        "api.internal,10.0.0.0/8,127.0.0.1:8080).",
        details={"variable": ALLOWED_HOSTS_SETTING, "entry": text},
    )


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def canonical(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) as the IPv4 address it carries."""
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


def non_public_kind(address: IPAddress) -> str | None:
    """What makes ``address`` unreachable by default ("loopback addresses", ...), or None for a public one."""
    address = canonical(address)
    kinds = (
        ("is_unspecified", "unspecified addresses (0.0.0.0, ::)"),
        ("is_loopback", "loopback addresses"),
        ("is_link_local", "link-local addresses (including the cloud metadata service 169.254.169.254)"),
        ("is_multicast", "multicast addresses"),
        ("is_private", "private addresses"),
        ("is_reserved", "reserved addresses"),
    )
    for attribute, kind in kinds:
        if getattr(address, attribute):
            return kind
    embedded = getattr(address, "sixtofour", None)  # 2002::/16 carries an IPv4 address too
    if embedded is not None and non_public_kind(embedded):
        return non_public_kind(embedded)
    if not address.is_global:
        return "addresses that are not publicly routable"
    if is_own_address(address):
        return "addresses of this host"
    return None


def is_own_address(address: IPAddress) -> bool:
    """Is ``address`` assigned to this host? (It can be bound; unknown, hence False, where any address can.)"""
    return _can_bind(address) and not _can_bind(_NEVER_LOCAL)


@functools.lru_cache(maxsize=256)
def _can_bind(address: IPAddress) -> bool:
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((str(address), 0))
    except OSError:
        return False
    return True


def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses ``host`` resolves to, in ``getaddrinfo``'s order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


@dataclass(frozen=True)
class Protected:
    """An address refused even when public, unless an allowlist entry names its port: the Dagster webserver."""

    what: str
    host: str
    port: int
    addresses: frozenset[IPAddress]

    @classmethod
    def from_url(cls, url: str, what: str) -> Protected | None:
        parts = urlsplit(url)
        if not parts.hostname:
            return None
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 80)
        try:
            addresses = frozenset(canonical(a) for a in resolve(parts.hostname, port))
        except (OSError, UnicodeError):
            addresses = frozenset()
        return cls(what, _normal_host(parts.hostname), port, addresses)

    def matches(self, host: str, address: IPAddress, port: int) -> bool:
        if port != self.port:
            return False
        if host == self.host or address in self.addresses:
            return True
        local = any(a.is_loopback or a.is_unspecified or is_own_address(a) for a in self.addresses)
        return local and (address.is_loopback or is_own_address(address))  # a server on 0.0.0.0 answers there too


@dataclass(frozen=True)
class EgressPolicy:
    """The rule above for one settings object (``from_settings``)."""

    allowed: tuple[AllowEntry, ...] = ()
    protected: tuple[Protected, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> EgressPolicy:
        dagster = Protected.from_url(settings.dagster_url, f"the Dagster webserver ({DAGSTER_URL_SETTING})")
        return cls(parse_allowed_hosts(settings.http_allowed_hosts), (dagster,) if dagster else ())

    def vet(self, host: str, port: int, node_id: str) -> list[IPAddress]:
        """The addresses to connect to for ``host:port``; ``ExecutorError`` if the rule refuses any of them."""
        name = _normal_host(host)
        try:
            addresses = resolve(name, port)
        except (OSError, UnicodeError) as exc:
            raise ExecutorError(
                f"Node '{node_id}': cannot resolve the host {host!r} ({getattr(exc, 'strerror', None) or exc}). "
                "Is the URL right?",
                details={"node_id": node_id, "host": host},
            ) from None
        for address in addresses:
            self._check(name, address, port, node_id)
        return addresses

    def _check(self, host: str, address: IPAddress, port: int, node_id: str) -> None:
        address = canonical(address)
        shown = f"{host}:{port}" if host == str(address) else f"{host}:{port} ({address})"
        for protected in self.protected:
            if protected.matches(host, address, port):
                if any(e.allows(host, address, port, port_required=True) for e in self.allowed):
                    return
                raise _refused(
                    node_id,
                    shown,
                    f"it is {protected.what}, which is never reachable from workflow definitions (even on a public "
                    f"address) unless {ALLOWED_HOSTS_SETTING} names it with its port ({_example(address, port)})",
                )
        kind = non_public_kind(address)
        if kind is None or any(e.allows(host, address, port) for e in self.allowed):
            return
        raise _refused(
            node_id,
            shown,
            f"{kind} are not reachable from workflow definitions unless {ALLOWED_HOSTS_SETTING} allows them "
            f"(e.g. {ALLOWED_HOSTS_SETTING}={_example(address, port)})",
        )


def _example(address: IPAddress, port: int) -> str:
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def _refused(node_id: str, shown: str, why: str) -> ExecutorError:
    return ExecutorError(
        f"Node '{node_id}': http to {shown} refused: {why}.",
        details={"node_id": node_id, "target": shown, "setting": ALLOWED_HOSTS_SETTING},
    )


def check_scheme(url: str, node_id: str, *, redirect_from: str | None = None) -> None:
    """``ExecutorError`` unless ``url`` is http or https."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in SCHEMES:
        return
    via = f" (a redirect from {redirect_from})" if redirect_from else ""
    raise ExecutorError(
        f"Node '{node_id}': http config: URL {url!r}{via} has the scheme {scheme or '(none)'!r}: only http and "
        "https URLs are fetched (and file: URLs inside MAESTRO_HTTP_FILE_ROOT, never through a redirect).",
        details={"node_id": node_id, "url": url},
    )


# ---- enforcement -----------------------------------------------------------------------------------------
class _VettingBackend(httpcore.SyncBackend):
    """Opens each TCP connection to the addresses the policy vetted for its host, never to a fresh lookup."""

    def __init__(self, policy: EgressPolicy, node_id: str) -> None:
        self.policy, self.node_id = policy, node_id

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        error: Exception | None = None
        for address in self.policy.vet(host, port, self.node_id):
            try:
                return super().connect_tcp(str(address), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:  # try the next vetted address
                error = exc
        assert error is not None
        raise error


class _VettingTransport(httpx.HTTPTransport):
    """httpx's transport with its connection pool on ``_VettingBackend`` (TLS as httpx configures it)."""

    def __init__(self, policy: EgressPolicy, node_id: str) -> None:
        super().__init__(trust_env=False)
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):  # pragma: no cover - httpx changed
            raise RuntimeError("httpx.HTTPTransport no longer keeps its httpcore pool in _pool: update egress.py")
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=_VettingBackend(policy, node_id)
        )


def client(policy: EgressPolicy, node_id: str, timeout: float) -> httpx.Client:
    """An httpx client whose every connection obeys ``policy`` (redirects are followed by ``send``)."""
    return httpx.Client(
        transport=_VettingTransport(policy, node_id), timeout=timeout, follow_redirects=False, trust_env=False
    )


def send(http: httpx.Client, request: httpx.Request, *, follow_redirects: bool, node_id: str) -> httpx.Response:
    """Send ``request``; follow at most ``MAX_REDIRECTS`` redirects, each hop checked like the first."""
    response = http.send(request)
    hops = 0
    while follow_redirects and response.next_request is not None:
        hops += 1
        target = response.next_request
        response.close()
        if hops > MAX_REDIRECTS:
            raise ExecutorError(
                f"Node '{node_id}': {request.url} redirected more than {MAX_REDIRECTS} times (last to "
                f"{target.url}). Use the final URL, or set follow_redirects: false.",
                details={"node_id": node_id, "url": str(request.url)},
            )
        check_scheme(str(target.url), node_id, redirect_from=str(response.request.url))
        response = http.send(target)
    return response
