"""Executor references -> callables: the built-in kinds by name, custom import paths through the policy.

Owns ``BUILTIN_FUNCTIONS`` (the function behind each built-in name of :data:`maestro_dagster.policy.BUILTIN_EXECUTORS`)
and ``resolve_executor``. What a reference may resolve to is decided by :mod:`maestro_dagster.policy`, the
same resolver validation uses: a built-in only by its name and only when the policy allows it for the
definition's origin; a custom ``package.module:function`` only inside the allowlist, on the resolved callable.
"""

from __future__ import annotations

import functools

from maestro_dagster import policy as _policy
from maestro_dagster.executors.base import BuiltinExecutor, ResolvedExecutor
from maestro_dagster.executors.command import command_executor
from maestro_dagster.executors.http import http_executor
from maestro_dagster.executors.human_review import human_review_executor
from maestro_dagster.executors.noop import noop_executor
from maestro_dagster.executors.phase import phase_executor
from maestro_dagster.executors.sql import sql_executor
from maestro_dagster.policy import ALLOWLIST_SETTING, BUILTIN_EXECUTORS, ExecutorPolicy, module_allowed

BUILTIN_FUNCTIONS: dict[str, BuiltinExecutor] = {
    "noop": noop_executor,
    "command": command_executor,
    "http": http_executor,
    "sql": sql_executor,
    "phase": phase_executor,
    "human_review": human_review_executor,
}
assert tuple(BUILTIN_FUNCTIONS) == BUILTIN_EXECUTORS, "every built-in name needs its function"

#: Built-ins that stop their own work on timeout (``invoke`` calls them without a watchdog thread).
SELF_TIMED_BUILTINS = frozenset({"command", "human_review"})

__all__ = [
    "ALLOWLIST_SETTING",
    "BUILTIN_EXECUTORS",
    "BUILTIN_FUNCTIONS",
    "SELF_TIMED_BUILTINS",
    "clear_cache",
    "is_builtin",
    "module_allowed",
    "resolve_executor",
]


def is_builtin(ref: str) -> bool:
    return ref in BUILTIN_FUNCTIONS


def resolve_executor(ref: str, policy: ExecutorPolicy) -> ResolvedExecutor:
    """Resolve an executor reference under ``policy``.

    Raises ``ExecutorNotAllowedError`` when the policy refuses it and ``UnknownExecutorError`` when it names
    nothing runnable (see :func:`maestro_dagster.policy.resolve_import_ref`).
    """
    return _resolve_cached(str(ref).strip(), policy)


def clear_cache() -> None:
    """Forget cached resolutions (tests; after editing an executor module in a long-lived process)."""
    _resolve_cached.cache_clear()
    _policy.clear_cache()


@functools.lru_cache(maxsize=1024)
def _resolve_cached(ref: str, policy: ExecutorPolicy) -> ResolvedExecutor:
    if ref in BUILTIN_FUNCTIONS:
        policy.check_builtin(ref)
        return ResolvedExecutor(
            ref=ref, fn=BUILTIN_FUNCTIONS[ref], builtin=True, enforces_own_timeout=ref in SELF_TIMED_BUILTINS
        )
    fn = _policy.resolve_import_ref(ref, policy)
    assert fn is not None
    return ResolvedExecutor(ref=ref, fn=fn, builtin=False)
