"""The node-executor contract and the one way to call an executor (``invoke``).

Owns: the ``node_input`` shape the original engine gave every executor (``build_node_input``), the
``ExecutorContext`` built-in executors also receive, ``ResolvedExecutor`` (what ``registry.resolve_executor``
returns), and ``invoke``: run a sync or async executor with the node's timeout and check that it returned a
JSON-serialisable dict. Nothing here imports Dagster.

It also owns the path-containment rule (``resolve_inside``: the real path, symlinks and ``..`` resolved, must be
inside a root) and its use for artifacts: a reported artifact is recorded only if its real path is inside
``settings.artifact_roots`` (the artifacts directory plus ``MAESTRO_ARTIFACT_ROOTS``); otherwise the node fails.
A definition is untrusted (docs/security.md): without this, ``artifacts: ["/etc/shadow"]`` would have the size
and digest of any file recorded and shown.

Timeouts: an async executor is cancelled when it exceeds ``ctx.timeout_seconds``. A sync Python callable
runs in a daemon worker thread; on timeout the node fails with ``NodeTimeoutError`` but **the thread cannot
be killed and keeps running in the background** until the callable returns (or the process exits). The
``command`` built-in enforces its own timeout and kills its whole process group, so nothing survives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import json
import logging
import math
import os
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maestro_dagster.errors import ExecutorError, NodeTimeoutError
from maestro_dagster.settings import Settings

NodeInput = dict[str, Any]
NodeOutput = dict[str, Any]

#: The keys of ``node_input``, exactly as the original engine built it (original-behaviour.md section 3.4).
NODE_INPUT_KEYS: tuple[str, ...] = (
    "node_id",
    "node_name",
    "node_config",
    "dependency_outputs",
    "dependency_artifacts",
    "global_context",
    "all_outputs",
    "all_artifacts",
)

#: Number of characters kept of long text (stdout, stderr, response bodies).
TAIL_CHARS = 4000
ARTIFACT_ROOTS_SETTING = "MAESTRO_ARTIFACT_ROOTS"

_LOG = logging.getLogger("maestro_dagster.executors")


@dataclass(frozen=True)
class ExecutorContext:
    """What a built-in executor knows besides ``node_input``.

    ``artifacts_dir`` is the directory for this node's files in this run (the caller passes
    ``<settings.artifacts_dir>/<execution_id>/<run_id>/<node_id>``, see ``NodeRuntime.artifacts_dir``); it is
    not created until an executor calls :meth:`ensure_artifacts_dir`.
    """

    workflow_id: str
    execution_id: str
    run_id: str
    node_id: str
    attempt: int
    artifacts_dir: Path
    settings: Settings
    timeout_seconds: float | None = None
    log: logging.Logger = field(default=_LOG)

    def ensure_artifacts_dir(self) -> Path:
        """Create (if needed) and return this node's artifacts directory, as an absolute path."""
        path = Path(self.artifacts_dir).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path


BuiltinExecutor = Callable[[NodeInput, ExecutorContext], "NodeOutput | Awaitable[NodeOutput]"]
CustomExecutor = Callable[[NodeInput], "NodeOutput | Awaitable[NodeOutput]"]


@dataclass(frozen=True)
class ResolvedExecutor:
    """An executor reference resolved to a callable.

    ``builtin`` executors are called as ``fn(node_input, ctx)``, custom ones as ``fn(node_input)``.
    ``enforces_own_timeout`` executors (``command``) receive the timeout through ``ctx`` and stop their own
    work; ``invoke`` then calls them directly instead of in a watchdog thread.
    """

    ref: str
    fn: Callable[..., Any]
    builtin: bool
    enforces_own_timeout: bool = False

    @property
    def is_async(self) -> bool:
        return _is_async_callable(self.fn)


def build_node_input(
    *,
    node_id: str,
    node_name: str,
    node_config: Mapping[str, Any] | None = None,
    dependency_outputs: Mapping[str, Any] | None = None,
    dependency_artifacts: Mapping[str, list[str]] | None = None,
    global_context: Mapping[str, Any] | None = None,
    all_outputs: Mapping[str, Any] | None = None,
    all_artifacts: Mapping[str, list[str]] | None = None,
) -> NodeInput:
    """Build ``node_input`` with exactly the original engine's keys (plain dicts, never ``None``)."""
    return {
        "node_id": node_id,
        "node_name": node_name,
        "node_config": dict(node_config or {}),
        "dependency_outputs": dict(dependency_outputs or {}),
        "dependency_artifacts": {k: list(v) for k, v in (dependency_artifacts or {}).items()},
        "global_context": dict(global_context or {}),
        "all_outputs": dict(all_outputs or {}),
        "all_artifacts": {k: list(v) for k, v in (all_artifacts or {}).items()},
    }


def tail(text: str | None, limit: int = TAIL_CHARS) -> str:
    """The last ``limit`` characters of ``text``."""
    if not text:
        return ""
    return text[-limit:]


def node_config(node_input: Mapping[str, Any]) -> dict[str, Any]:
    """The node's config as a dict (``ExecutorError`` if it is something else)."""
    config = node_input.get("node_config") or {}
    if not isinstance(config, Mapping):
        raise ExecutorError(
            f"Node '{node_input.get('node_id')}': config must be a mapping, got {type(config).__name__}.",
            details={"node_id": node_input.get("node_id")},
        )
    return dict(config)


def positive_number(value: Any, what: str, node_id: str) -> float | None:
    """``value`` as a positive float, ``None`` if unset; ``ExecutorError`` naming ``what`` otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 or math.isinf(value):
        raise ExecutorError(
            f"Node '{node_id}': {what} must be a positive number of seconds, got {value!r}.",
            details={"node_id": node_id, "setting": what},
        )
    return float(value)


# ---- invoke ---------------------------------------------------------------------------------------------


def invoke(resolved: ResolvedExecutor, node_input: NodeInput, ctx: ExecutorContext) -> NodeOutput:
    """Run an executor for one node attempt and return its checked output.

    Sync callables run in the calling thread when there is no timeout, else in a daemon worker thread the
    caller waits for; coroutines run with ``asyncio.run`` (in a worker thread if this thread already runs an
    event loop) and are cancelled on timeout. Exceptions raised by the executor propagate unchanged.
    Timeout: ``NodeTimeoutError``. The result must be a dict that survives a ``json.dumps`` round trip; the
    round-tripped copy is returned, with ``artifacts`` paths resolved (and refused outside the artifact roots).
    """
    node_id = str(node_input.get("node_id", ctx.node_id))
    timeout = ctx.timeout_seconds
    if resolved.builtin:
        call: Callable[[], Any] = functools.partial(resolved.fn, node_input, ctx)
    else:
        call = functools.partial(resolved.fn, node_input)

    ctx.log.debug("node %s: invoking executor %s (attempt %s)", node_id, resolved.ref, ctx.attempt)
    if resolved.is_async:
        result = _run_awaitable(call, timeout, node_id)
    elif timeout is None or resolved.enforces_own_timeout:
        result = call()
    else:
        result = _call_in_thread(call, timeout, node_id)
    if inspect.isawaitable(result):  # a sync callable that returned a coroutine (partial, callable object)
        awaitable = result
        result = _run_awaitable(lambda: awaitable, timeout, node_id)
    return check_output(result, node_id, resolved.ref, artifact_roots=ctx.settings.artifact_roots)


def check_output(result: Any, node_id: str, ref: str = "", *, artifact_roots: Sequence[Path]) -> NodeOutput:
    """Check an executor's return value; return its JSON round-tripped copy.

    Recognised keys are checked too: ``artifacts`` must be a list of path strings, each inside one of
    ``artifact_roots`` once resolved (relative ones against the current directory; symlinks and ``..``
    resolved): the copy holds the resolved paths. ``quality_score`` must be a finite number.
    """
    by = f" (executor {ref})" if ref else ""
    if not isinstance(result, dict):
        raise ExecutorError(
            f"Node '{node_id}'{by} returned {type(result).__name__}, not a dict. An executor must return a "
            "JSON-serialisable dict (e.g. {'status': 'completed'}).",
            details={"node_id": node_id, "returned_type": type(result).__name__},
        )
    try:
        copy = json.loads(json.dumps(result, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ExecutorError(
            f"Node '{node_id}'{by} returned a dict that is not JSON-serialisable ({exc}). Return only "
            "str, int, float (finite), bool, None, lists and dicts with string keys.",
            details={"node_id": node_id, "returned_type": type(result).__name__},
        ) from exc
    if "artifacts" in copy:
        artifacts = copy["artifacts"]
        if not isinstance(artifacts, list) or not all(isinstance(p, str) and p for p in artifacts):
            raise ExecutorError(
                f"Node '{node_id}'{by}: 'artifacts' must be a list of file paths, got {artifacts!r:.200}.",
                details={"node_id": node_id},
            )
        copy["artifacts"] = [_artifact_path(p, artifact_roots, node_id, by) for p in artifacts]
    if "quality_score" in copy and copy["quality_score"] is not None:
        score = copy["quality_score"]
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise ExecutorError(
                f"Node '{node_id}'{by}: 'quality_score' must be a number, got {score!r:.100}.",
                details={"node_id": node_id},
            )
    return copy


def resolve_inside(path: str | os.PathLike[str], roots: Iterable[str | os.PathLike[str]]) -> Path | None:
    """The real path of ``path`` (``~`` expanded, symlinks and ``..`` resolved) if it is inside one of ``roots``
    (each resolved the same way, a root itself included), else None. ``path`` need not exist."""
    real = Path(os.path.realpath(os.path.expanduser(os.fspath(path))))
    for root in roots:
        real_root = Path(os.path.realpath(os.path.expanduser(os.fspath(root))))
        if real == real_root or real.is_relative_to(real_root):
            return real
    return None


def _artifact_path(path: str, roots: Sequence[Path], node_id: str, by: str) -> str:
    inside = resolve_inside(path, roots)
    if inside is None:
        shown = ", ".join(str(r) for r in roots) or "(none)"
        raise ExecutorError(
            f"Node '{node_id}'{by} reported the artifact {path!r} (real path "
            f"{os.path.realpath(os.path.expanduser(path))}), which is outside the artifact roots [{shown}]: write "
            f"artifacts under the node's artifacts directory, or have an operator add the directory to "
            f"{ARTIFACT_ROOTS_SETTING} (comma-separated) where the code location runs.",
            details={"node_id": node_id, "artifact": path, "artifact_roots": [str(r) for r in roots]},
        )
    return str(inside)


def _timeout_error(node_id: str, timeout: float, *, sync_thread: bool) -> NodeTimeoutError:
    message = (
        f"Node '{node_id}' exceeded its timeout of {timeout:g} seconds. Raise the node's timeout_seconds "
        "(or defaults.timeout_seconds) if it needs longer."
    )
    if sync_thread:
        message += " Its Python thread cannot be stopped and may keep running in the background."
    return NodeTimeoutError(message, details={"node_id": node_id, "timeout_seconds": timeout})


def _call_in_thread(call: Callable[[], Any], timeout: float | None, node_id: str) -> Any:
    """Run ``call`` in a daemon thread; wait at most ``timeout`` seconds; re-raise its exception as is."""
    outcome: dict[str, Any] = {}
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome["value"] = context.run(call)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"maestro-node-{node_id}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise _timeout_error(node_id, float(timeout or 0), sync_thread=True)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _run_awaitable(make: Callable[[], Any], timeout: float | None, node_id: str) -> Any:
    """Run the awaitable returned by ``make()`` to completion (cancelled after ``timeout`` seconds)."""

    async def runner() -> Any:
        task = asyncio.ensure_future(make())
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait({task}, timeout=5)
            raise _timeout_error(node_id, float(timeout or 0), sync_thread=False)
        return task.result()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(runner())
    # This thread already runs an event loop: asyncio.run cannot nest, so use a fresh thread.
    return _call_in_thread(lambda: asyncio.run(runner()), None, node_id)


def _is_async_callable(fn: Any) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004
