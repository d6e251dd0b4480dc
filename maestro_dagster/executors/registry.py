"""Executor references -> callables: the function behind each built-in name, and ``resolve_executor``.

Owns ``BUILTIN_FUNCTIONS`` (the function behind each name of :data:`maestro_dagster.policy.BUILTIN_EXECUTORS`,
keyed by those names) and ``resolve_executor``. Reading a reference and deciding what it may resolve to is
:func:`maestro_dagster.policy.resolve_ref`'s, the same call validation makes: a built-in only by its name and
only when the policy allows it for the definition's origin; a custom ``package.module:function`` only inside
the allowlist, on the resolved callable. This module only looks up the built-in's function.
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
from maestro_dagster.policy import ALLOWLIST_SETTING, BUILTIN_EXECUTORS, ExecutorPolicy, is_builtin, module_allowed

#: Each built-in's function, found by its name: ``<name>_executor`` for every name of ``BUILTIN_EXECUTORS``.
_FUNCTIONS: dict[str, BuiltinExecutor] = {
    fn.__name__: fn
    for fn in (noop_executor, command_executor, http_executor, sql_executor, phase_executor, human_review_executor)
}
BUILTIN_FUNCTIONS: dict[str, BuiltinExecutor] = {name: _FUNCTIONS[f"{name}_executor"] for name in BUILTIN_EXECUTORS}
if len(BUILTIN_FUNCTIONS) != len(_FUNCTIONS):  # pragma: no cover - a function without its name in the policy
    raise ImportError("executors.registry has a built-in function whose name is not in policy.BUILTIN_EXECUTORS")

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


def resolve_executor(ref: str, policy: ExecutorPolicy) -> ResolvedExecutor:
    """Resolve an executor reference under ``policy``.

    Raises ``ExecutorNotAllowedError`` when the policy refuses it and ``UnknownExecutorError`` when it names
    nothing runnable (see :func:`maestro_dagster.policy.resolve_ref`).
    """
    return _resolve_cached(str(ref), policy)


def clear_cache() -> None:
    """Forget cached resolutions (tests; after editing an executor module in a long-lived process)."""
    _resolve_cached.cache_clear()
    _policy.clear_cache()


@functools.lru_cache(maxsize=1024)
def _resolve_cached(ref: str, policy: ExecutorPolicy) -> ResolvedExecutor:
    found = _policy.resolve_ref(ref, policy)
    if found.builtin:
        return ResolvedExecutor(
            ref=found.ref,
            fn=BUILTIN_FUNCTIONS[found.ref],
            builtin=True,
            enforces_own_timeout=found.ref in SELF_TIMED_BUILTINS,
        )
    assert found.fn is not None
    return ResolvedExecutor(ref=found.ref, fn=found.fn, builtin=False)
