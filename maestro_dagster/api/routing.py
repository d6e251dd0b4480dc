"""The order of work of every REST route (``GuardedRoute``, the ``route_class`` of every router): the caller's token
and role first, then the body's size, then its JSON, and only then FastAPI's own parsing and validation.

FastAPI reads and validates a body before it runs any dependency: with the role check as a dependency alone, a
caller without a token sending a bad body got 422 instead of 401, and a valid caller's malformed call was audited
as ``anonymous``. The role a route needs is the one its ``Depends(viewer | operator | admin)`` declares
(``deps.role`` marks it); ``GuardedRoute`` finds it among the route's dependencies and authorizes before anything
reads the body (the dependency then returns the principal found here).

A JSON body is then parsed once (Starlette keeps the result for FastAPI) and refused with a 422 naming the place
when it holds what JSON parsing lets through but neither JSON encoding, nor the database, nor Dagster can take:
a lone UTF-16 surrogate (``"\\ud800"``, or its raw UTF-8 bytes), a NUL character, NaN or Infinity, nesting
deeper than ``MAX_JSON_DEPTH``; bytes that are not UTF-8 and numbers too long to read are 422s too (FastAPI
would answer a bare 400).
"""

from __future__ import annotations

import email.message
import json
import math
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from maestro_dagster.api.auth import ROLES, authorize_async
from maestro_dagster.errors import ValidationError
from maestro_dagster.settings import Settings

MAX_JSON_DEPTH = 256  # above any definition MAESTRO_MAX_NESTING allows (at most 200), below Python's recursion limit
ROLE_ATTRIBUTE = "required_role"  # set by deps.role on the dependency it returns


def declared_role(dependant: Dependant) -> str | None:
    """The strongest role the route's dependencies (at any depth) require, or None for an open route."""
    roles, stack = [], list(dependant.dependencies)
    while stack:
        dependency = stack.pop()
        role = getattr(dependency.call, ROLE_ATTRIBUTE, None)
        if role in ROLES:
            roles.append(role)
        stack.extend(dependency.dependencies)
    return max(roles, key=ROLES.__getitem__) if roles else None


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI parses this body as JSON (the same test as ``fastapi.routing.get_request_handler``)."""
    if not content_type:
        return False  # FastAPI's strict content type: such a body is not parsed as JSON
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def _shown(key: Any) -> str:
    """A key as it can be shown in an error message (itself possibly holding a surrogate)."""
    text = str(key).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= 60 else text[:57] + "..."


def _location(path: tuple[Any, ...]) -> str:
    shown = [_shown(p) for p in path]
    if len(shown) > 12:  # a deep place: its first and last keys
        shown = [*shown[:5], f"...({len(shown) - 10} more)...", *shown[-5:]]
    return ".".join(["body", *shown])


def _text_problem(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"the text holds a lone surrogate U+{ord(text[exc.start]):04X} at character {exc.start} (a \\uD800-"
            "\\uDFFF escape without its pair, or its raw bytes), which is not Unicode text: send the character "
            "itself or a complete surrogate pair"
        )
    if "\x00" in text:
        return (
            f"the text holds a NUL character (U+0000) at character {text.index(chr(0))}, which the database cannot "
            "store: remove it"
        )
    return None


def _number_problem(value: float) -> str:
    shown = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return f"{shown} is not a JSON number (NaN, Infinity, or a number too large for a double): send a finite number"


def _fits(document: Any) -> bool:
    """The quick test (JSON encoding in C, then the containers alone): True when nothing needs locating."""
    try:
        dumped = json.dumps(document, ensure_ascii=False, allow_nan=False)
        dumped.encode("utf-8")
    except (ValueError, RecursionError):  # UnicodeEncodeError is a ValueError
        return False
    if "\\u0000" in dumped:  # a NUL (or a text holding a backslash and "u0000": then nothing is found)
        return False
    stack = [(document, 0)] if isinstance(document, dict | list) else []
    while stack:
        value, depth = stack.pop()
        if depth >= MAX_JSON_DEPTH:
            return False
        for child in value.values() if isinstance(value, dict) else value:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return True


def _path(trail: list[tuple[int, Any]], entry: int) -> tuple[Any, ...]:
    keys = []
    while entry >= 0:
        entry, key = trail[entry]
        keys.append(key)
    return tuple(reversed(keys))


def _locate(document: Any) -> tuple[str, str] | None:
    """The first problem in document order, walked without recursion; each entry keeps only its parent's index and
    its key (``trail``), so memory stays linear in the document's size."""
    trail: list[tuple[int, Any]] = []
    stack: list[tuple[Any, int, int]] = [(document, -1, 0)]  # (value, its entry in trail, depth)
    while stack:
        value, entry, depth = stack.pop()
        problem = None
        if isinstance(value, str):
            problem = _text_problem(value)
        elif isinstance(value, float) and not math.isfinite(value):
            problem = _number_problem(value)
        elif isinstance(value, dict | list) and depth >= MAX_JSON_DEPTH:
            problem = f"the document is nested deeper than {MAX_JSON_DEPTH} levels: flatten it"
        elif isinstance(value, dict | list):
            items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
            for key in value.keys() if isinstance(value, dict) else ():
                key_problem = _text_problem(key)
                if key_problem:
                    trail.append((entry, key))
                    return _location(_path(trail, len(trail) - 1)), f"key: {key_problem}"
            for key, item in reversed(items):
                trail.append((entry, key))
                stack.append((item, len(trail) - 1, depth + 1))
        if problem:
            return _location(_path(trail, entry)), problem
    return None


def json_problem(document: Any) -> tuple[str, str] | None:
    """Where a parsed JSON document holds what cannot be stored or sent on, as (location, message), or None."""
    return None if _fits(document) else _locate(document)


def _unreadable(exc: Exception) -> ValidationError:
    """A body ``json.loads`` could not read for a reason other than its syntax."""
    code = "bad_json"
    if isinstance(exc, UnicodeDecodeError):
        message = (
            f"The request body is not UTF-8 (byte 0x{exc.object[exc.start]:02x} at position {exc.start}): "
            "send JSON encoded as UTF-8."
        )
    elif isinstance(exc, RecursionError):
        code = "too_deep"  # the code a definition nested too deeply gets (docs/security.md)
        message = f"The request body's JSON is nested too deeply to read: at most {MAX_JSON_DEPTH} levels."
    elif "digits" in str(exc):
        message = (
            f"The request body holds a number of more than {sys.get_int_max_str_digits()} digits, too long to "
            "read: send it as a string."
        )
    else:
        message = "The request body cannot be read as JSON: send a UTF-8 JSON document."
    return ValidationError(message, details={"errors": [{"code": code, "location": "body", "message": message}]})


async def check_json_body(request: Request) -> None:
    """Parse the JSON body (kept by Starlette for FastAPI) and refuse what cannot be stored or sent on."""
    try:
        document = await request.json()
    except json.JSONDecodeError:
        return  # a syntax error: FastAPI answers it (422 with its position)
    except (ValueError, RecursionError) as exc:
        raise _unreadable(exc) from None
    found = json_problem(document)
    if found:
        location, problem = found
        code = "too_deep" if "nested" in problem else "bad_json"
        raise ValidationError(
            f"The request body cannot be accepted: {location}: {problem}.",
            details={"errors": [{"code": code, "location": location, "message": problem}]},
        )


def check_announced_length(request: Request, limit: int) -> None:
    """413 at once for a body whose Content-Length is over the limit (a streamed body is limited as it is read,
    by ``app.LimitsAndAudit``)."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise HTTPException(413, f"Request body over {limit} bytes.")


class GuardedRoute(APIRoute):
    """An ``APIRoute`` that authorizes (with the role its dependencies declare) before the body is read, then limits
    and checks the body, then hands over to FastAPI's handler."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        role = declared_role(self.dependant)
        has_body = self.body_field is not None

        async def guarded(request: Request) -> Response:
            settings: Settings = request.app.state.settings
            if role is not None:
                await authorize_async(request, settings, role)
            check_announced_length(request, settings.api_max_body_bytes)
            if has_body and _is_json(request.headers.get("content-type")):
                await check_json_body(request)
            return await handler(request)

        return guarded
