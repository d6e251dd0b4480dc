"""Bearer tokens and roles: viewer (read), operator (execute/resume/cancel/pause/approve), admin (definitions).

Tokens come from ``MAESTRO_API_TOKENS`` (JSON: token -> role, or token -> {role, name}) or the
``api_tokens`` table (sha256 of the token). Without a token the API answers 401, with a weaker role 403.
``MAESTRO_API_OPEN=true`` (local development only) makes every caller an anonymous admin.

A token travels in the ``Authorization: Bearer`` header; a WebSocket may pass it as ``?token=`` instead (browsers
cannot set headers there). On plain HTTP the query string is never read for a token (it would end up in access
logs, proxies and browser history): such a call is a 401 saying to use the header. A caller is shown and audited
by its name only (an unnamed token's is ``token-<8 hex of its sha256>``), never by characters of its token.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import unquote_plus

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from maestro_dagster.db.models import ApiToken
from maestro_dagster.db.session import get_db
from maestro_dagster.errors import AuthError, ForbiddenError
from maestro_dagster.settings import Settings

ROLES = {"viewer": 1, "operator": 2, "admin": 3}


@dataclass(frozen=True)
class Principal:
    name: str
    role: str

    def allows(self, role: str) -> bool:
        return ROLES[self.role] >= ROLES[role]


ANONYMOUS_ADMIN = Principal("anonymous (open mode)", "admin")


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _configured(token: str | None, settings: Settings) -> Principal | None:
    """Open mode, or a token of MAESTRO_API_TOKENS (no database needed)."""
    if settings.api_open:
        return ANONYMOUS_ADMIN
    if not token:
        return None
    given = token.encode("utf-8")  # compare_digest refuses str with non-ASCII characters
    for known, (role, name) in settings.api_tokens.items():
        if hmac.compare_digest(known.encode("utf-8"), given):
            return Principal(name, role)
    return None


def _stored(token: str, settings: Settings) -> Principal | None:
    """A token of the ``api_tokens`` table that is not revoked."""
    with get_db(settings) as session:
        row = session.get(ApiToken, token_sha256(token))
        if row is not None and row.revoked_at is None and row.role in ROLES:
            return Principal(row.name, row.role)
    return None


def principal_for(token: str | None, settings: Settings) -> Principal | None:
    principal = _configured(token, settings)
    if principal is None and token and not settings.api_open:
        principal = _stored(token, settings)
    return principal


def query_token(conn: HTTPConnection) -> str | None:
    """The value of a literal ``token=`` in the query string (the key exactly, as the log filter redacts it)."""
    for part in conn.scope.get("query_string", b"").decode("latin-1").split("&"):
        key, _, value = part.partition("=")
        if key == "token" and value:
            return unquote_plus(value)
    return None


BEARER_SUBPROTOCOL = "maestro.bearer"  # a browser's WebSocket: ``new WebSocket(url, ["maestro.bearer", token])``


def subprotocol_token(conn: HTTPConnection) -> str | None:
    """The token a browser offers as the WebSocket subprotocol after ``maestro.bearer`` (a browser can set no
    header on a WebSocket, and the token must not be in the URL, where logs and history keep it)."""
    offered = [p.strip() for p in conn.headers.get("sec-websocket-protocol", "").split(",")]
    if len(offered) >= 2 and offered[0] == BEARER_SUBPROTOCOL and offered[1]:
        return offered[1]
    return None


def bearer(conn: HTTPConnection) -> str | None:
    """The token of a call: the ``Authorization: Bearer`` header; on a WebSocket, else the ``maestro.bearer``
    subprotocol, else ``?token=``."""
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if conn.scope["type"] == "websocket":
        return subprotocol_token(conn) or query_token(conn)
    return None


def _checked(conn: HTTPConnection, principal: Principal | None, role: str) -> Principal:
    conn.state.principal = principal
    if principal is None:
        if conn.scope["type"] == "http" and query_token(conn) is not None and not bearer(conn):
            raise AuthError(
                "A token in the query string (`?token=`) is accepted on WebSockets only: send it in the "
                "`Authorization: Bearer <token>` header."
            )
        raise AuthError("Missing or unknown bearer token: send `Authorization: Bearer <token>`.")
    if not principal.allows(role):
        raise ForbiddenError(f"{principal.name} has role {principal.role}; this needs {role}.")
    return principal


async def authorize_async(conn: HTTPConnection, settings: Settings, role: str) -> Principal:
    """The caller's principal if it has ``role`` (else AuthError / ForbiddenError), kept in ``conn.state`` for the
    audit log; a thread hop only when the token must be looked up in the ``api_tokens`` table."""
    token = bearer(conn)
    principal = _configured(token, settings)
    if principal is None and token and not settings.api_open:
        principal = await run_in_threadpool(_stored, token, settings)
    return _checked(conn, principal, role)
