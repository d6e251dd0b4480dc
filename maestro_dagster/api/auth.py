"""Bearer tokens and roles: viewer (read), operator (execute/resume/cancel/pause/approve), admin (definitions).

Tokens come from ``MAESTRO_API_TOKENS`` (JSON: token -> role, or token -> {role, name}) or the
``api_tokens`` table (sha256 of the token). Without a token the API answers 401, with a weaker role 403.
``MAESTRO_API_OPEN=true`` (local development only) makes every caller an anonymous admin.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

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
    for known, (role, name) in settings.api_tokens.items():
        if hmac.compare_digest(known, token):
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


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query_params.get("token")  # WebSocket clients cannot always set headers


def _checked(request: Request, principal: Principal | None, role: str) -> Principal:
    request.state.principal = principal
    if principal is None:
        raise AuthError("Missing or unknown bearer token: send `Authorization: Bearer <token>`.")
    if not principal.allows(role):
        raise ForbiddenError(f"{principal.name} has role {principal.role}; this needs {role}.")
    return principal


def authorize(request: Request, settings: Settings, role: str) -> Principal:
    return _checked(request, principal_for(bearer(request), settings), role)


async def authorize_async(request: Request, settings: Settings, role: str) -> Principal:
    """``authorize`` without a thread hop unless the token must be looked up in the ``api_tokens`` table."""
    token = bearer(request)
    principal = _configured(token, settings)
    if principal is None and token and not settings.api_open:
        principal = await run_in_threadpool(_stored, token, settings)
    return _checked(request, principal, role)
