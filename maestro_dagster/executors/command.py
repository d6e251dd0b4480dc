"""The ``command`` built-in executor: run a program as a subprocess.

Config (``node_config``):
- ``args: [str, ...]``: the program and its arguments, run **without a shell** (``$HOME``, ``*``, ``;`` are
  passed literally).
- ``shell: true`` with ``command: "..."``: run the string through ``/bin/sh``; only when the definition says
  so. Giving ``command`` without ``shell: true`` (or ``args`` with it) is an error.
- ``cwd``: working directory (default: the process's). ``env``: variables set for the child (a ``null`` value
  unsets one), over its minimal environment (below).
- ``timeout_seconds`` (else the node's timeout): on timeout the whole process group gets SIGTERM, then
  SIGKILL after a 2 s grace, and the node fails with ``NodeTimeoutError``. (A grandchild that starts its own
  session escapes the group.)
- ``allowed_exit_codes`` (default ``[0]``): any other exit code raises ``ExecutorError`` with the code and the
  stderr tail.
- ``artifacts: [glob or path, ...]``: relative to ``cwd``; the files that exist afterwards are reported as
  absolute paths in ``artifacts`` (a pattern matching nothing is logged and skipped).

Placeholders: exactly ``{execution_id}``, ``{node_id}``, ``{workflow_id}``, ``{run_id}``, ``{attempt}`` and
``{artifacts_dir}`` are replaced in ``args``, ``command``, ``cwd``, ``env`` values and ``artifacts``; any other
text, including other braces (JSON arguments), is passed unchanged and needs no escaping. In ``command``
(shell mode) the values are shell-quoted. Using ``{artifacts_dir}`` creates the node's artifacts directory.

Environment: the child does **not** inherit the process's environment (it did before: a definition could print
database URLs, passwords and tokens). It gets only ``BASE_ENV`` (``PATH``, ``HOME``, ``LANG``, ``LC_ALL``,
``LC_CTYPE``, ``TZ``, ``TMPDIR``, ``USER``: those that are set), the variables named in ``MAESTRO_COMMAND_ENV``
(comma-separated; never one of ``API_SECRET_VARIABLES``), ``MAESTRO_WORKFLOW_ID``, ``MAESTRO_EXECUTION_ID``,
``MAESTRO_NODE_ID``, ``MAESTRO_ATTEMPT`` and ``MAESTRO_NODE_ARTIFACTS_DIR`` (which may not exist yet), then the
node's ``env``. So ``MAESTRO_DATABASE_URL``, ``POSTGRES_PASSWORD``, ``MAESTRO_SQL_CONNECTIONS``, ``DAGSTER_*``
and API tokens reach a child only if an operator names them in ``MAESTRO_COMMAND_ENV``.

Output: ``{exit_code, stdout_tail, stderr_tail, duration_seconds}`` (tails: last 4000 characters; only the
tail is kept in memory however much the program prints), plus ``artifacts`` when configured (each must be inside
the artifact roots, see ``base.check_output``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from maestro_dagster.errors import ExecutorError, NodeTimeoutError
from maestro_dagster.executors.base import (
    TAIL_CHARS,
    ExecutorContext,
    NodeInput,
    NodeOutput,
    node_config,
    positive_number,
)
from maestro_dagster.settings import API_SECRET_VARIABLES

#: The parent's variables every child gets (when set); on Windows also what a process needs to start at all.
BASE_ENV: tuple[str, ...] = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER")
_WINDOWS_ENV = ("SYSTEMROOT", "COMSPEC", "PATHEXT", "WINDIR")
PLACEHOLDERS = ("execution_id", "node_id", "workflow_id", "run_id", "attempt", "artifacts_dir")
_PLACEHOLDER_RE = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
KILL_GRACE_SECONDS = 2.0
_TAIL_BYTES = TAIL_CHARS * 4  # enough bytes for TAIL_CHARS characters of UTF-8
_POSIX = os.name == "posix"


class _Placeholders:
    """Replaces the known placeholders; creates the artifacts dir the first time it is used."""

    def __init__(self, ctx: ExecutorContext) -> None:
        self.ctx = ctx
        self.used_artifacts_dir = False

    def value(self, name: str) -> str:
        if name == "artifacts_dir":
            self.used_artifacts_dir = True
            return str(self.ctx.ensure_artifacts_dir())
        return str(getattr(self.ctx, name))

    def apply(self, text: str, *, quote: bool = False) -> str:
        def sub(match: re.Match[str]) -> str:
            value = self.value(match.group(1))
            return shlex.quote(value) if quote else value

        return _PLACEHOLDER_RE.sub(sub, text)


def command_executor(node_input: NodeInput, ctx: ExecutorContext) -> NodeOutput:
    """Run the configured command; see the module docstring for the config keys."""
    config = node_config(node_input)
    node_id = ctx.node_id
    fill = _Placeholders(ctx)

    shell = config.get("shell", False)
    if not isinstance(shell, bool):
        raise _config_error(node_id, f"shell must be true or false, got {shell!r}")
    argv: str | list[str]
    if shell:
        command = config.get("command")
        if config.get("args") is not None:
            raise _config_error(node_id, "with shell: true give the shell line as command: '...', not args")
        if not isinstance(command, str) or not command.strip():
            raise _config_error(node_id, "shell: true needs command: a non-empty string")
        argv = fill.apply(command, quote=True)
        shown = argv
    else:
        if config.get("command") is not None:
            raise _config_error(
                node_id, "command: '...' runs through a shell only with shell: true; otherwise give args: [...]"
            )
        args = config.get("args")
        if not isinstance(args, list) or not args or not all(isinstance(a, str | int | float) for a in args):
            raise _config_error(node_id, "args must be a non-empty list of strings, e.g. [python, script.py]")
        argv = [fill.apply(str(a)) for a in args]
        shown = shlex.join(argv)

    cwd = config.get("cwd")
    if cwd is not None:
        if not isinstance(cwd, str):
            raise _config_error(node_id, f"cwd must be a string, got {cwd!r}")
        cwd = str(Path(fill.apply(cwd)).expanduser().resolve())
        if not Path(cwd).is_dir():
            raise _config_error(node_id, f"cwd {cwd!r} is not an existing directory")
    env = _build_env(config.get("env"), ctx, fill, node_id)

    timeout = positive_number(config.get("timeout_seconds"), "timeout_seconds", node_id) or ctx.timeout_seconds
    allowed = config.get("allowed_exit_codes", [0])
    if not isinstance(allowed, list) or not all(isinstance(c, int) and not isinstance(c, bool) for c in allowed):
        raise _config_error(node_id, f"allowed_exit_codes must be a list of integers, got {allowed!r}")
    patterns = config.get("artifacts")
    if patterns is not None and (not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns)):
        raise _config_error(node_id, f"artifacts must be a list of paths or globs, got {patterns!r}")

    ctx.log.info("node %s: running %s%s", node_id, "(shell) " if shell else "", shown)
    started = time.monotonic()
    exit_code, stdout, stderr, timed_out = _run(argv, shell=shell, cwd=cwd, env=env, timeout=timeout, node_id=node_id)
    duration = round(time.monotonic() - started, 3)

    if timed_out:
        raise NodeTimeoutError(
            f"Node '{node_id}' exceeded its timeout of {timeout:g} seconds; its process group was killed. "
            "Raise timeout_seconds (in the node's config or on the node) if the command needs longer. "
            f"stderr tail:\n{stderr[-1000:]}",
            details={"node_id": node_id, "timeout_seconds": timeout, "stdout_tail": stdout, "stderr_tail": stderr},
        )
    if exit_code not in allowed:
        how = f"was killed by signal {_signal_name(-exit_code)}" if exit_code < 0 else f"exited with code {exit_code}"
        raise ExecutorError(
            f"Node '{node_id}': command {how} (allowed exit codes: {allowed}). stderr tail:\n{stderr or '(empty)'}",
            details={"node_id": node_id, "exit_code": exit_code, "stdout_tail": stdout, "stderr_tail": stderr},
        )
    output: NodeOutput = {
        "exit_code": exit_code,
        "stdout_tail": stdout,
        "stderr_tail": stderr,
        "duration_seconds": duration,
    }
    if patterns is not None:
        output["artifacts"] = _collect_artifacts(
            [fill.apply(p) for p in patterns], Path(cwd) if cwd else Path.cwd(), ctx
        )
    return output


def child_environment(ctx: ExecutorContext) -> dict[str, str]:
    """The environment a child starts from: ``BASE_ENV``, ``MAESTRO_COMMAND_ENV``'s names and the node's ids."""
    passthrough = [n.strip() for n in ctx.settings.command_env_passthrough.split(",") if n.strip()]
    names = [*BASE_ENV, *(_WINDOWS_ENV if os.name == "nt" else ()), *passthrough]
    env = {n: os.environ[n] for n in names if n in os.environ and n not in API_SECRET_VARIABLES}
    env.update(
        MAESTRO_WORKFLOW_ID=ctx.workflow_id,
        MAESTRO_EXECUTION_ID=ctx.execution_id,
        MAESTRO_NODE_ID=ctx.node_id,
        MAESTRO_ATTEMPT=str(ctx.attempt),
        MAESTRO_NODE_ARTIFACTS_DIR=str(Path(ctx.artifacts_dir).expanduser().resolve()),
    )
    return env


def _build_env(raw: Any, ctx: ExecutorContext, fill: _Placeholders, node_id: str) -> dict[str, str]:
    env = child_environment(ctx)
    if raw is None:
        return env
    if not isinstance(raw, Mapping):
        raise _config_error(node_id, f"env must be a mapping of NAME: value, got {type(raw).__name__}")
    for name, value in raw.items():
        if value is None:
            env.pop(str(name), None)
        elif isinstance(value, str | int | float | bool):
            env[str(name)] = fill.apply(str(value).lower() if isinstance(value, bool) else str(value))
        else:
            raise _config_error(node_id, f"env value of {name} must be a string or number, got {value!r}")
    return env


def _run(
    argv: str | list[str], *, shell: bool, cwd: str | None, env: dict[str, str], timeout: float | None, node_id: str
) -> tuple[int, str, str, bool]:
    """Run the process; return (exit code, stdout tail, stderr tail, timed out)."""
    kwargs: dict[str, Any] = (
        {"start_new_session": True} if _POSIX else {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)}
    )
    try:
        proc = subprocess.Popen(
            argv,
            shell=shell,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            **kwargs,
        )
    except FileNotFoundError as exc:
        program = argv if isinstance(argv, str) else argv[0]
        raise ExecutorError(
            f"Node '{node_id}': program {program!r} not found ({exc.strerror}). Use an absolute path or make "
            "sure it is on PATH for the process running the node.",
            details={"node_id": node_id},
        ) from exc
    except PermissionError as exc:
        raise ExecutorError(
            f"Node '{node_id}': cannot execute {argv if isinstance(argv, str) else argv[0]!r}: {exc.strerror}.",
            details={"node_id": node_id},
        ) from exc

    readers = [_TailReader(proc.stdout), _TailReader(proc.stderr)]
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
    except BaseException:
        _kill_group(proc)
        raise
    for reader in readers:
        # A background child that inherited the pipes may keep them open: do not wait for it forever.
        reader.join(KILL_GRACE_SECONDS)
    return proc.returncode, readers[0].text(), readers[1].text(), timed_out


class _TailReader(threading.Thread):
    """Drains a pipe in the background, keeping only its last bytes."""

    def __init__(self, stream: IO[bytes] | None) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.buffer = bytearray()
        self.lock = threading.Lock()
        self.start()

    def run(self) -> None:
        if self.stream is None:
            return
        read = getattr(self.stream, "read1", self.stream.read)
        with contextlib.suppress(OSError, ValueError):
            while chunk := read(65536):
                with self.lock:
                    self.buffer += chunk
                    if len(self.buffer) > 2 * _TAIL_BYTES:
                        del self.buffer[:-_TAIL_BYTES]
        with contextlib.suppress(OSError):
            self.stream.close()

    def text(self) -> str:
        with self.lock:
            data = bytes(self.buffer[-_TAIL_BYTES:])
        return data.decode("utf-8", errors="replace")[-TAIL_CHARS:]


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after the grace period."""
    if not _POSIX:
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(KILL_GRACE_SECONDS)
        return
    pgid = proc.pid  # start_new_session: the child leads its own group
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE_SECONDS
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(max(0.0, deadline - time.monotonic()))
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    proc.wait()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _collect_artifacts(patterns: list[str], cwd: Path, ctx: ExecutorContext) -> list[str]:
    found: list[str] = []
    for pattern in patterns:
        expanded = os.path.expanduser(pattern)
        full = expanded if os.path.isabs(expanded) else str(cwd / expanded)
        matches = sorted(m for m in glob.glob(full, recursive=True) if os.path.isfile(m))
        if not matches:
            ctx.log.warning("node %s: artifact pattern %r matched no file (looked in %s)", ctx.node_id, pattern, cwd)
        for match in matches:
            path = os.path.abspath(match)
            if path not in found:
                found.append(path)
    return found


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def _config_error(node_id: str, problem: str) -> ExecutorError:
    return ExecutorError(f"Node '{node_id}': command config: {problem}.", details={"node_id": node_id})
