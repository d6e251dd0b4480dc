"""Is a waiting run worker's code still the code on disk? Its imported modules' files, and a check of them.

A warm worker has imported Dagster and the code location before its run exists. Once ready it reports the source
file of every module it holds (``loaded_files``: path -> (mtime, ctime, size), nanoseconds and bytes), and when a
launch is about to hand it a run the launcher checks them (``changed_files``): a file that is gone, differs from
what the worker saw, or changed (mtime or ctime) after the worker was started (less ``CLOCK_SLACK_NS``: the
kernel stamps files with a coarse clock) means the worker may hold old code, so the run goes to a new worker.

This is what "new code" means to a run worker, whoever deployed it: an edited or reinstalled module, a ``git
pull``, a new package version. A definition change needs none of this: a worker compiles its job from the table
when its run arrives. The check reads the files' metadata only (about 1,400 files for a Maestro worker, a few
milliseconds); it uses this host's clock, so the code must be on a local file system or one whose clock agrees.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping, Sequence

CLOCK_SLACK_NS = 1_000_000_000  # a change this close before the worker's start counts as after it


def signature(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ctime_ns, st.st_size


def loaded_files(modules: Iterable[object] | None = None) -> dict[str, tuple[int, int, int]]:
    """The source (or extension) file of every imported module that has one on disk, with its signature."""
    files: dict[str, tuple[int, int, int]] = {}
    for module in list(sys.modules.values()) if modules is None else modules:
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path not in files and (sig := signature(path)) is not None:
            files[path] = sig
    return files


def changed_files(files: Mapping[str, Sequence[int]], started_ns: int, limit: int = 3) -> list[str]:
    """Up to ``limit`` of ``files`` whose content may differ from what a worker started at ``started_ns`` (wall
    clock, ``time.time_ns()``) imported: gone, changed since the worker saw it, or changed after it started."""
    cutoff = started_ns - CLOCK_SLACK_NS
    changed: list[str] = []
    for path, seen in files.items():
        now = signature(path)
        if now is None or now != tuple(seen) or now[0] > cutoff or now[1] > cutoff:
            changed.append(path)
            if len(changed) >= limit:
                break
    return changed
