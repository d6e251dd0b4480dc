"""Processes for the tests that start servers: free ports, waiting with deadlines, log tails, processes started in
their own session and stopped by pid (never by name), and ``serving``, the set-up and teardown of a whole stack of
them. Used by ``tests/e2e`` and ``tests/api``; its list of environment variables (``MAESTRO_ENV``) by every test."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from maestro_dagster.db.session import dispose_engines
from maestro_dagster.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]
# Variables a developer's shell may carry that would change what the tests (and the servers they start) talk to.
MAESTRO_ENV = (
    "MAESTRO_DATABASE_URL", "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD",
    "USE_SQLITE", "SQLITE_PATH", "MAESTRO_HOME", "MAESTRO_DB_SCHEMA", "DAGSTER_HOME", "MAESTRO_SQL_CONNECTIONS",
    "MAESTRO_ARTIFACTS_DIR", "MAESTRO_DEFS_DIR", "MAESTRO_EXECUTOR_ALLOWLIST", "MAESTRO_SYNC_DEFS_ON_LOAD",
    "MAESTRO_MIRROR_IN_RUN", "MAESTRO_DAGSTER_POSTGRES_URL", "MAESTRO_API_TOKENS", "MAESTRO_API_OPEN",
    "MAESTRO_DAGSTER_URL", "MAESTRO_API_MAX_BODY_BYTES", "MAESTRO_API_POLL_SECONDS", "MAESTRO_API_BUILTIN_EXECUTORS",
    "MAESTRO_HTTP_ALLOWED_HOSTS", "MAESTRO_HTTP_FILE_ROOT", "MAESTRO_ARTIFACT_ROOTS", "MAESTRO_COMMAND_ENV",
    "MAESTRO_MAX_NODES", "MAESTRO_MAX_EDGES", "MAESTRO_MAX_DEPTH", "MAESTRO_MAX_CONDITION_CHARS",
    "MAESTRO_MAX_CONDITION_DEPTH", "MAESTRO_MAX_CONFIG_BYTES", "MAESTRO_MAX_DEFINITION_BYTES", "MAESTRO_MAX_NESTING",
    "MAESTRO_MAX_YAML_VALUES", "MAESTRO_SQLITE_BUSY_TIMEOUT", "MAESTRO_SQLITE_LOCK_WAIT_SECONDS",
    "MAESTRO_DEFAULT_EXECUTOR", "MAESTRO_CELERY_BROKER_URL", "MAESTRO_CELERY_BACKEND_URL",
)  # fmt: skip
# What every test (and every server a test starts) runs with unless it says otherwise: the example executors are
# opt-in for users (docs/security.md), the tests opt in.
TEST_SETTINGS = {"MAESTRO_EXECUTOR_ALLOWLIST": "maestro_examples"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` and what was last seen (the last
    falsy value, or the last transient error) after ``timeout`` seconds. Bounds are generous: the machine running
    the tests may be loaded, and a condition met early returns at once."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    seen: Any = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except AssertionError:
            raise
        except Exception as exc:  # a transient error (server still starting, DB restarting) is retried
            last_error, value = exc, None
        if value:
            return value
        seen = value
        time.sleep(interval)
    suffix = f"; last error: {last_error!r}" if last_error else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {seen!r:.500}{suffix}")


def tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class Proc:
    """A process this test session started (own session), its log file, and how to stop it by pid."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT) -> None:
        self.name, self.args, self.log = name, args, log
        self._log_handle = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=self._log_handle, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM) without waiting: stopping several at once, then ``stop`` each."""
        if self.popen.poll() is None:
            self.popen.terminate()

    def stop(self, timeout: float = 20) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        # Whatever it started and left behind (code servers, run workers) is in its own process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self._log_handle.close()


@contextmanager
def serving(stack: Any, start: Callable[[], object], mp: pytest.MonkeyPatch | None = None) -> Iterator[Any]:
    """A test stack (``setup``, ``stop_all``, ``log_tails``) set up (``stack.apply(mp)`` first, given a MonkeyPatch)
    and started by ``start``, the tails of its logs printed if it does not come up; when the block ends every
    process it started is stopped, ``mp`` undone, and the settings and engines that pointed at it dropped."""
    try:
        if mp is not None:
            stack.apply(mp)
        stack.setup()
        try:
            start()
        except BaseException:
            print(stack.log_tails())
            raise
        yield stack
    finally:
        stack.stop_all()
        if mp is not None:
            mp.undo()
        get_settings.cache_clear()
        dispose_engines()
