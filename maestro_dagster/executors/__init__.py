"""Node executors, pure of Dagster: the contract, the built-ins and how an executor reference is resolved.

An executor is a callable taking the original engine's ``node_input`` dict and returning a
JSON-serialisable dict (sync or async). Built-ins (the names of ``BUILTIN_EXECUTORS``) also receive an
:class:`ExecutorContext`; custom executors are named ``package.module:function`` and must be inside the
allowlist (``MAESTRO_EXECUTOR_ALLOWLIST``); :func:`maestro_dagster.policy.resolve_ref` reads and decides. Call one with
``invoke(resolve_executor(ref, ExecutorPolicy.for_origin(settings, origin)), node_input, ctx)``.
"""

from maestro_dagster.executors.base import (
    NODE_INPUT_KEYS,
    BuiltinExecutor,
    CustomExecutor,
    ExecutorContext,
    NodeInput,
    NodeOutput,
    ResolvedExecutor,
    build_node_input,
    check_output,
    invoke,
)
from maestro_dagster.executors.registry import (
    ALLOWLIST_SETTING,
    BUILTIN_EXECUTORS,
    BUILTIN_FUNCTIONS,
    clear_cache,
    is_builtin,
    module_allowed,
    resolve_executor,
)

__all__ = [
    "ALLOWLIST_SETTING",
    "BUILTIN_EXECUTORS",
    "BUILTIN_FUNCTIONS",
    "NODE_INPUT_KEYS",
    "BuiltinExecutor",
    "CustomExecutor",
    "ExecutorContext",
    "NodeInput",
    "NodeOutput",
    "ResolvedExecutor",
    "build_node_input",
    "check_output",
    "clear_cache",
    "invoke",
    "is_builtin",
    "module_allowed",
    "resolve_executor",
]
