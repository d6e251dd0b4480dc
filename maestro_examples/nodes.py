"""Small custom executors used by example workflows and tests.

Each takes the original engine's ``node_input`` dict (``node_id``, ``node_name``, ``node_config``,
``dependency_outputs``, ``dependency_artifacts``, ``global_context``, ``all_outputs``, ``all_artifacts``) and
returns a JSON-serialisable dict, except the deliberately broken ones (``fail``, ``bad_return``,
``not_json``).

- ``echo`` / ``async_echo``: return the config and the ids of the direct upstream outputs received;
  ``config.output`` (a mapping) is merged into the result (e.g. ``{needs_backend: true}`` for conditions).
- ``flaky``: fails until attempt ``config.succeed_on_attempt`` (default 3), counting attempts in the file
  ``config.counter_file``, so the count survives retries in new processes.
- ``fail``: raises ``RuntimeError(config.message)``.
- ``sleep``: sleeps ``config.seconds`` (default 1).
- ``write_file``: writes ``config.content`` to ``config.path`` and reports it as an artifact.
- ``bad_return`` / ``not_json``: return a non-dict / a dict JSON cannot hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any

try:  # POSIX: serialise concurrent attempts on the counter file
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def _config(node_input: dict[str, Any]) -> dict[str, Any]:
    return dict(node_input.get("node_config") or {})


def echo(node_input: dict[str, Any]) -> dict[str, Any]:
    """Return ``{node_id, config, dependencies, global_context}`` plus ``config.output`` merged in."""
    config = _config(node_input)
    result: dict[str, Any] = {
        "node_id": node_input["node_id"],
        "config": config,
        "dependencies": sorted(node_input.get("dependency_outputs") or {}),
        "global_context": node_input.get("global_context") or {},
    }
    if "failure" in node_input:  # a failure handler (on_failure / finally) is told what failed
        result["failure"] = node_input["failure"]
    result.update(config.get("output") or {})
    return result


async def async_echo(node_input: dict[str, Any]) -> dict[str, Any]:
    """``echo``, as a coroutine, after ``await asyncio.sleep(config.seconds)`` (default 0)."""
    await asyncio.sleep(float(_config(node_input).get("seconds", 0)))
    return {**echo(node_input), "async": True}


def flaky(node_input: dict[str, Any]) -> dict[str, Any]:
    """Fail until the ``succeed_on_attempt``-th call counted in ``config.counter_file``."""
    config = _config(node_input)
    counter = Path(config["counter_file"])
    succeed_on = int(config.get("succeed_on_attempt", 3))
    counter.parent.mkdir(parents=True, exist_ok=True)
    with open(counter, "a+", encoding="utf-8") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        text = handle.read().strip()
        attempt = (int(text) if text else 0) + 1
        handle.seek(0)
        handle.truncate()
        handle.write(str(attempt))
        handle.flush()
        os.fsync(handle.fileno())
    if attempt < succeed_on:
        raise RuntimeError(f"flaky: attempt {attempt} fails (succeeds on attempt {succeed_on})")
    return {"status": "completed", "attempts": attempt}


def process_item(node_input: dict[str, Any]) -> dict[str, Any]:
    """One item of a ``for_each`` node: ``{item, item_index, doubled}`` (``doubled``: the item times 2 if it is a
    number). Raises for an item listed in ``config.fail_items`` while ``config.until_file`` does not exist (so a
    resume after creating the file succeeds)."""
    config = _config(node_input)
    item, index = node_input.get("item"), node_input.get("item_index")
    until = config.get("until_file")
    if item in (config.get("fail_items") or []) and not (until and Path(until).exists()):
        raise RuntimeError(f"item {index} ({item!r}) failed on purpose")
    doubled = item * 2 if isinstance(item, int | float) and not isinstance(item, bool) else None
    return {"item": item, "item_index": index, "doubled": doubled}


def fail(node_input: dict[str, Any]) -> dict[str, Any]:
    """Always raise ``RuntimeError(config.message)``."""
    raise RuntimeError(str(_config(node_input).get("message", f"node {node_input.get('node_id')} failed on purpose")))


def sleep(node_input: dict[str, Any]) -> dict[str, Any]:
    """Sleep ``config.seconds`` (default 1) and report it."""
    seconds = float(_config(node_input).get("seconds", 1))
    time.sleep(seconds)
    return {"status": "completed", "slept_seconds": seconds}


def write_file(node_input: dict[str, Any]) -> dict[str, Any]:
    """Write ``config.content`` (default: the node id) to ``config.path``; report it in ``artifacts``."""
    config = _config(node_input)
    path = Path(config["path"]).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(config.get("content", node_input.get("node_id"))), encoding="utf-8")
    result: dict[str, Any] = {"status": "completed", "artifacts": [str(path)]}
    with contextlib.suppress(TypeError, ValueError):
        if "quality_score" in config:
            result["quality_score"] = float(config["quality_score"])
    return result


def bad_return(node_input: dict[str, Any]) -> Any:
    """Return something that is not a dict (``config.value``, default a list)."""
    return _config(node_input).get("value", ["not", "a", "dict"])


def not_json(node_input: dict[str, Any]) -> dict[str, Any]:
    """Return a dict JSON cannot hold."""
    return {"status": "completed", "value": object()}


def inspect_file(node_input: dict[str, Any]) -> dict[str, Any]:
    """Describe the file a file sensor started this execution for (``global_context.file.path``)."""
    import hashlib

    info = (node_input.get("global_context") or {}).get("file") or {}
    path = Path(str(info.get("path", "")))
    if not path.is_file():
        raise FileNotFoundError(f"no file to inspect: global_context.file.path is {info.get('path')!r}")
    data = path.read_bytes()
    return {
        "path": str(path),
        "size_bytes": len(data),
        "lines": data.count(b"\n"),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
