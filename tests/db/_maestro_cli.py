"""The ``maestro`` CLI as a user runs it (a subprocess with this test's environment), and what a clean error is:
one ``error:`` line naming the fix, no traceback, no driver text, no password."""

from __future__ import annotations

import os
import subprocess
import sys
import time

DRIVER_TEXT = ("Traceback", "Error:", "Error)", "sqlalche.me", "sqlite3.", "Is the server running", "Retrying failed")


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``python -m maestro_dagster ARGS`` with this test's environment (plus ``env``); ``.elapsed`` is its time."""
    full_env = {**os.environ, **(env or {})}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "maestro_dagster", *args], env=full_env, capture_output=True, text=True, timeout=timeout
    )
    done.elapsed = time.monotonic() - started  # type: ignore[attr-defined]
    return done


def assert_clean_error(result: subprocess.CompletedProcess[str], *needles: str, secret: str | None = None) -> str:
    """Exit 1 and one ``error:`` line on stderr holding every needle; no traceback or driver text; no secret."""
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    for needle in needles:
        assert needle in errors[0], output
    for text in DRIVER_TEXT:
        assert text not in output, output
    if secret:
        assert secret not in output, output
    return errors[0]
