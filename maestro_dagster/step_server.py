"""The step forkserver (``step_processes.py``): ``prestart`` starts it, and this module, imported by it, preloads.

``prestart`` starts this process's forkserver (Python's, one per process) with ``MODULES_FILE_ENV`` naming a file
that lists, one per line, the modules of this process that a step may need (standard library and installed
packages), and ``PRELOAD``, whose last entry is this module. Nothing here imports Dagster, so a command can start
the server before it imports Dagster itself, and both import at once. Imported by the server, this module
reads the list, removes the file and the variable (so no step sees either), and imports each module, then the modules
of the classes the Dagster instance (``DAGSTER_HOME``) is configured with: a module that
fails to import is skipped (the step imports it itself, as a spawned step would), and warnings raised by imports
are not shown again (the run's process has shown them). Importing it anywhere else preloads nothing.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing
import os
import sys
import sysconfig
import tempfile
import threading
import warnings
from multiprocessing import forkserver
from pathlib import Path
from typing import Any

from maestro_dagster.names import DEFINITIONS_MODULE
from maestro_dagster.settings import get_settings

log = logging.getLogger(__name__)
MODULES_FILE_ENV = "MAESTRO_STEP_SERVER_MODULES"
START_METHOD = "forkserver"
# Dagster's own multiprocess module first, as Dagster does (user code must not break it); then the code location.
PRELOAD = ("dagster._core.executor.multiprocess", DEFINITIONS_MODULE, "maestro_dagster.step_server")
_lock = threading.Lock()
_started_for: tuple[Any, ...] | None = None  # the environment the running forkserver was started with


def _environment() -> tuple[Any, ...]:
    return tuple(sorted(os.environ.items())), tuple(sys.path)


def prestart() -> None:
    """Make sure this process's forkserver runs, with the code location preloaded and the current environment.

    A server started with another environment (or by someone else, e.g. an earlier run's executor with other
    preloads) is let go: it exits once the steps it started have ended (they hold its "alive" pipe), and the next
    one starts now. Uses the stdlib's forkserver singleton, whose restart has no public API."""
    global _started_for
    if START_METHOD not in multiprocessing.get_all_start_methods():
        return
    server: Any = forkserver._forkserver  # private fields read below: the stdlib has no public restart
    with _lock:
        current = _environment()
        if server._forkserver_pid is not None and _started_for != current:
            _let_go(server)
        server.set_forkserver_preload(list(PRELOAD))
        if server._forkserver_pid is None:
            _start(server)
        else:
            server.ensure_running()  # restarts a server that died (Dagster's own path does the same)
        _started_for = current


def _start(server: Any) -> None:
    """Start the server, telling it (``step_server.MODULES_FILE_ENV``, a file it reads and removes) which modules
    to import: those of this process from the standard library and the installed packages."""
    with tempfile.NamedTemporaryFile("w", prefix="maestro-step-modules-", suffix=".txt", delete=False) as out:
        out.write("\n".join(_installed_modules()))
    os.environ[MODULES_FILE_ENV] = out.name
    try:
        server.ensure_running()
    finally:
        os.environ.pop(MODULES_FILE_ENV, None)


def _installed_modules() -> list[str]:
    """This process's modules (in import order) that come from the standard library, the installed packages or
    Maestro's package: not ``__main__``, not a test suite's or a script's own modules."""
    roots = {sysconfig.get_path(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.add(str(Path(__file__).resolve().parent))
    prefixes = tuple(os.path.join(os.path.realpath(root), "") for root in roots if root)
    names = []
    for name, module in list(sys.modules.items()):
        if module is None or name in ("__main__", "__mp_main__"):
            continue
        origin = getattr(module, "__file__", None)
        if origin is None:  # built into the interpreter, or a namespace package
            if name.partition(".")[0] in sys.stdlib_module_names:
                names.append(name)
        elif os.path.realpath(origin).startswith(prefixes):
            names.append(name)
    return names


def _let_go(server: Any) -> None:
    """Detach the running forkserver (closing our end of its alive pipe) without waiting for its last steps."""
    with server._lock:
        pid, alive_fd = server._forkserver_pid, server._forkserver_alive_fd
        server._forkserver_pid = server._forkserver_address = server._forkserver_alive_fd = None
    if alive_fd is not None:
        os.close(alive_fd)
    if pid is not None:  # reap it when it exits, so no zombie is left behind
        threading.Thread(target=_reap, args=(pid,), name=f"maestro-forkserver-reap-{pid}", daemon=True).start()


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # already reaped
        os.waitpid(pid, 0)


def start_step_server() -> None:
    """``prestart`` for a process about to run a job with the default executor: never fails (the executor tries
    again when the plan starts, and Dagster's own path starts a server on the first step)."""
    if get_settings().step_start_method != START_METHOD:
        return
    try:
        prestart()
    except Exception as exc:
        log.warning("could not start the step forkserver ahead of the steps: %s", exc)


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
        for name in [*names, *_instance_modules()]:
            with contextlib.suppress(Exception):
                importlib.import_module(name)


def _instance_modules() -> list[str]:
    """The modules of the classes ``$DAGSTER_HOME/dagster.yaml`` configures (storages, launcher, coordinator...):
    every step opens that instance, so the server imports them even when the run's process had not yet."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return []
    try:
        from dagster._core.instance.ref import InstanceRef
        from dagster._serdes.config_class import ConfigurableClassData

        ref = InstanceRef.from_dir(home)
    except Exception:  # no instance there yet, or a config Dagster refuses: the step reports it itself
        return []
    return [value.module_name for value in ref._asdict().values() if isinstance(value, ConfigurableClassData)]


_preload()
