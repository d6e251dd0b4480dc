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


def principal_for(token: str | None, settings: Settings) -> Principal | None:
    if settings.api_open:
        return ANONYMOUS_ADMIN
    if not token:
        return None
    for known, (role, name) in settings.api_tokens.items():
        if hmac.compare_digest(known, token):
            return Principal(name, role)
    with get_db(settings) as session:
        row = session.get(ApiToken, token_sha256(token))
        if row is not None and row.revoked_at is None and row.role in ROLES:
            return Principal(row.name, row.role)
    return None


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query_params.get("token")  # WebSocket clients cannot always set headers


def authorize(request: Request, settings: Settings, role: str) -> Principal:
    principal = principal_for(bearer(request), settings)
    request.state.principal = principal
    if principal is None:
        raise AuthError("Missing or unknown bearer token: send `Authorization: Bearer <token>`.")
    if not principal.allows(role):
        raise ForbiddenError(f"{principal.name} has role {principal.role}; this needs {role}.")
    return principal
