"""Imported by the step forkserver only (``step_processes.PRELOAD``): import the modules the run's process named.

``step_processes`` starts the forkserver with ``MODULES_FILE_ENV`` naming a file that lists, one per line, the
modules of the run's process that a step may need (standard library and installed packages). Importing this module
reads the list, removes the file and the variable (so no step sees either), and imports each module: a module that
fails to import is skipped (the step imports it itself, as a spawned step would), and warnings raised by imports
are not shown again (the run's process has shown them). Importing it anywhere else does nothing.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings

MODULES_FILE_ENV = "MAESTRO_STEP_SERVER_MODULES"


def _preload() -> None:
    path = os.environ.pop(MODULES_FILE_ENV, None)
    if not path:
        return
    try:
        with open(path, encoding="utf-8") as listing:
            names = listing.read().split()
    except OSError:
        return
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            with contextlib.suppress(Exception):
                importlib.import_module(name)


_preload()
