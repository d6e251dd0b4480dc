"""Keeping Dagster's DEBUG and INFO console lines out of ``maestro run`` / ``maestro resume`` unless ``--verbose``.

The run's own console logger is set to WARNING through run config, but each step process of the multiprocess
executor logs ``STEP_WORKER_STARTED`` through Dagster's default system logger (at DEBUG) before it reads any run
config. Step processes inherit this process's stderr, so while a run executes ``quiet_dagster_console`` makes
file descriptor 2 a pipe read by a thread that drops Dagster's DEBUG/INFO console lines and forwards every other
byte unchanged (warnings, errors, tracebacks, a node's own output). The block's end writes a marker line into the
pipe: the thread has forwarded everything written before it once it reads the marker, and stops there, although
processes started meanwhile (the step forkserver, multiprocessing's resource tracker) keep the pipe open.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import sys
import threading
from collections.abc import Iterator

#: Dagster's console line: ``2026-01-01 12:00:00 +0000 - dagster - DEBUG - ...``
DAGSTER_CHATTER = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} - dagster - (DEBUG|INFO) - ")


def _end_marker() -> bytes:
    """A marker line for one block, unguessable: a node writing to stderr cannot end the forwarding early."""
    return b"\0maestro-quiet-stderr-end-" + secrets.token_hex(16).encode()


def _forward(read_fd: int, out_fd: int, end: bytes) -> None:
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            ended = next((i for i, line in enumerate(lines) if line.endswith(end)), None)
            if ended is not None:  # the marker ends the block (after a partial last line of a child, if any)
                before = lines[ended][: -len(end)]
                lines = lines[:ended] + ([before] if before else [])
            kept = b"".join(line + b"\n" for line in lines if not DAGSTER_CHATTER.match(line))
            if kept:
                with contextlib.suppress(OSError):
                    os.write(out_fd, kept)
            if ended is not None:
                return
        if pending and not DAGSTER_CHATTER.match(pending):
            with contextlib.suppress(OSError):
                os.write(out_fd, pending)


@contextlib.contextmanager
def quiet_dagster_console(enabled: bool = True) -> Iterator[None]:
    """While the block runs, this process's and its children's stderr lose Dagster's DEBUG/INFO lines."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    original = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    end = _end_marker()
    thread = threading.Thread(target=_forward, args=(read_fd, original, end), name="maestro-quiet-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        with contextlib.suppress(OSError):
            os.write(2, end + b"\n")
        os.dup2(original, 2)  # a child still alive (the step forkserver, the resource tracker) keeps the pipe open
        thread.join(timeout=5)
