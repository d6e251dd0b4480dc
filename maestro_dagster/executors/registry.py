"""Executor references -> callables: the built-in kinds and allowlisted custom import paths.

Owns ``BUILTIN_EXECUTORS`` (``noop``, ``command``, ``http``, ``sql``, ``phase``, ``human_review``) and
``resolve_executor``.
A custom executor is named ``package.module:function`` (``function`` may be a dotted attribute path, e.g.
``Class.method``). Its module path must start with one of the allowed prefixes at a dot boundary (the
setting ``MAESTRO_EXECUTOR_ALLOWLIST``), checked *before* anything is imported, and the object found must
itself be defined in an allowed module, so ``allowed.module:os.system`` cannot reach through an import.
Resolution is cached per (ref, prefixes).
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Sequence
from typing import Any

from maestro_dagster.errors import ExecutorError, ExecutorNotAllowedError
from maestro_dagster.executors.base import BuiltinExecutor, ResolvedExecutor
from maestro_dagster.executors.command import command_executor
from maestro_dagster.executors.http import http_executor
from maestro_dagster.executors.human_review import human_review_executor
from maestro_dagster.executors.noop import noop_executor
from maestro_dagster.executors.phase import phase_executor
from maestro_dagster.executors.sql import sql_executor

ALLOWLIST_SETTING = "MAESTRO_EXECUTOR_ALLOWLIST"

BUILTIN_EXECUTORS: dict[str, BuiltinExecutor] = {
    "noop": noop_executor,
    "command": command_executor,
    "http": http_executor,
    "sql": sql_executor,
    "phase": phase_executor,
    "human_review": human_review_executor,
}

#: Built-ins that stop their own work on timeout (``invoke`` calls them without a watchdog thread).
SELF_TIMED_BUILTINS = frozenset({"command", "human_review"})

#: Built-in kinds that are planned but not available in this version.
PENDING_BUILTINS: dict[str, str] = {}

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_REF_RE = re.compile(rf"^(?P<module>{_IDENT}(?:\.{_IDENT})*):(?P<attr>{_IDENT}(?:\.{_IDENT})*)$")


def is_builtin(ref: str) -> bool:
    return ref in BUILTIN_EXECUTORS


def module_allowed(module: str, allowed_prefixes: Sequence[str]) -> bool:
    """True if ``module`` is one of the prefixes or inside one (``a.b`` allows ``a.b`` and ``a.b.c``)."""
    return any(module == p or module.startswith(p + ".") for p in allowed_prefixes if p)


def resolve_executor(ref: str, allowed_prefixes: Sequence[str]) -> ResolvedExecutor:
    """Resolve an executor reference.

    ``ref`` is a built-in kind (``noop``, ``command``, ``http``, ``sql``, ``phase``) or
    ``package.module:function``. Raises ``ExecutorNotAllowedError`` when the module is outside
    ``allowed_prefixes`` and ``ExecutorError`` when the ref is malformed, unknown, cannot be imported, or
    does not name a callable.
    """
    return _resolve_cached(str(ref).strip(), tuple(p.strip() for p in allowed_prefixes if p and p.strip()))


def clear_cache() -> None:
    """Forget cached resolutions (tests; after editing an executor module in a long-lived process)."""
    _resolve_cached.cache_clear()


@functools.lru_cache(maxsize=1024)
def _resolve_cached(ref: str, prefixes: tuple[str, ...]) -> ResolvedExecutor:
    if ref in BUILTIN_EXECUTORS:
        return ResolvedExecutor(
            ref=ref, fn=BUILTIN_EXECUTORS[ref], builtin=True, enforces_own_timeout=ref in SELF_TIMED_BUILTINS
        )
    if ref in PENDING_BUILTINS:
        raise ExecutorError(
            f"Executor {ref!r} is not available yet: {PENDING_BUILTINS[ref]} is planned but not part of this "
            f"version. Use one of {sorted(BUILTIN_EXECUTORS)} or an allowlisted 'package.module:function'.",
            details={"executor": ref},
        )
    match = _REF_RE.match(ref)
    if not match:
        raise ExecutorError(
            f"Unknown executor {ref!r}: use a built-in kind ({', '.join(sorted(BUILTIN_EXECUTORS))}) or an "
            "import path 'package.module:function'.",
            details={"executor": ref},
        )
    module_name, attr_path = match["module"], match["attr"]
    if not module_allowed(module_name, prefixes):
        raise _not_allowed(ref, module_name, prefixes)
    if any(part.startswith("__") for part in attr_path.split(".")):
        raise ExecutorError(
            f"Executor {ref!r}: dunder attributes cannot name an executor; name a function.",
            details={"executor": ref},
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ExecutorError(
            f"Executor {ref!r}: cannot import module {module_name!r} ({type(exc).__name__}: {exc}). Check the "
            "spelling and that the package is installed where the Dagster code location runs.",
            details={"executor": ref},
        ) from exc
    obj: Any = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ExecutorError(
                f"Executor {ref!r}: module {module_name!r} has no attribute {attr_path!r}.",
                details={"executor": ref},
            ) from None
    if not callable(obj):
        raise ExecutorError(
            f"Executor {ref!r}: {attr_path!r} is a {type(obj).__name__}, not a callable. Name a function "
            "taking node_input and returning a dict.",
            details={"executor": ref},
        )
    defined_in = _defining_module(obj)
    if not module_allowed(defined_in, prefixes):
        raise _not_allowed(ref, defined_in, prefixes)
    # A built-in function named by its import path still needs its context argument.
    for kind, fn in BUILTIN_EXECUTORS.items():
        if obj is fn:
            return ResolvedExecutor(ref=ref, fn=fn, builtin=True, enforces_own_timeout=kind in SELF_TIMED_BUILTINS)
    return ResolvedExecutor(ref=ref, fn=obj, builtin=False)


def _defining_module(obj: Any) -> str:
    while isinstance(obj, functools.partial):
        obj = obj.func
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str):
        module = getattr(type(obj), "__module__", "") or ""
    return module


def _not_allowed(ref: str, module: str, prefixes: tuple[str, ...]) -> ExecutorNotAllowedError:
    allowed = ", ".join(prefixes) if prefixes else "(empty: no custom executor is allowed)"
    return ExecutorNotAllowedError(
        f"Executor {ref!r} is not allowed: module {module!r} is outside the executor allowlist [{allowed}]. "
        f"To allow it, add its package prefix to the comma-separated setting {ALLOWLIST_SETTING} "
        f"(e.g. {ALLOWLIST_SETTING}={','.join([*prefixes, module.split('.')[0] or 'my_package'])}) in the "
        "environment of the Dagster code location and the API.",
        details={"executor": ref, "module": module, "allowed_prefixes": list(prefixes)},
    )
