"""Python's cyclic garbage collector spaced out during work that allocates millions of short-lived objects (a leaf).

A mirror catch-up (decoded events, rows) and the validation of a large definition (nodes, problems, bitsets)
allocate objects that reference counting frees almost all of; with the default thresholds the collector still
runs every 700 allocations, and its full passes walk every live object, so the work grows faster than its input.
``fewer_collections`` spaces the young-generation collections out and restores the thresholds when the last
concurrent user of the process is done; ``collections_paused`` turns the collector off for a block whose memory is
bounded (a definition within its size limits), and back on when the last concurrent user is done.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

GC_THRESHOLD = 50_000  # allocations between two young-generation collections (Python's default: 700)
_lock = threading.Lock()
_users = 0  # blocks of this process under way
_saved: list[int] = []
_pausers = 0  # collections_paused blocks under way


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Collections spaced out for the duration of the block (nestable, thread-safe)."""
    global _users
    with _lock:
        if _users == 0:
            _saved[:] = gc.get_threshold()
            gc.set_threshold(GC_THRESHOLD, *_saved[1:])
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                gc.set_threshold(*_saved)


@contextlib.contextmanager
def collections_paused() -> Iterator[None]:
    """The collector off for the duration of the block (nestable, thread-safe); for work of bounded memory only:
    reference counting still frees everything that is not a cycle, and cycles wait for the next collection."""
    global _pausers
    with _lock:
        if _pausers == 0:
            gc.disable()
        _pausers += 1
    try:
        yield
    finally:
        with _lock:
            _pausers -= 1
            if _pausers == 0:
                gc.enable()
