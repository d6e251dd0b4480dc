"""How the default (multiprocess) executor starts a step's process: from a forkserver with the run's modules preloaded.

Dagster's multiprocess executor starts every step in a new process, by default with the ``spawn`` start method: a
new interpreter that imports Dagster and the code location again (about 3.5 s per step on a small machine, most of
a short run's time). ``with_forkserver_default`` wraps an executor definition (same name and config schema) so that
a run whose config picks no ``start_method`` uses Dagster's ``forkserver`` start method with
everything a step needs preloaded: a server process imports, once per run process, the modules the run's process
has imported from the standard library and the installed packages (Dagster, its storage, the code location
``maestro_dagster.definitions``; see ``step_server.py``), and each step is a fork of it, which only opens the
instance and loads its job. Isolation between steps is what it was: every step (and every retry of
it) is still a process of its own, forked from a server that never runs a node and holds no connection, so no
state of one step reaches another; a step crash or kill ends that step only. A run config that names a start
method (``execution: {config: {multiprocess: {start_method: {spawn: {}}}}}``) gets exactly that, and
``MAESTRO_STEP_START_METHOD=spawn`` makes Dagster's ``spawn`` the default again (for node code that cannot be
forked from a process that imported it, which is rare).

The forkserver is one per process (Python's). It is started when the plan starts executing, with the environment of
that moment; a step forked from it sees that environment, as a spawned step sees its parent's. A process that runs
several runs with a changed environment in between (a test session; ``maestro run`` and run workers run one) gets
a new server for the new environment; the old one exits once the steps it started have ended.

``prestart`` starts it ahead of time: the warm run worker (``launcher/worker.py``) has it ready before a run, and
``maestro run`` starts it while Dagster creates and plans the run.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Iterator, Mapping
from multiprocessing import forkserver
from pathlib import Path
from typing import Any

from dagster import ExecutorDefinition
from dagster._core.executor.base import Executor
from dagster._core.executor.init import InitExecutorContext

from maestro_dagster.names import DEFINITIONS_MODULE
from maestro_dagster.settings import get_settings
from maestro_dagster.step_server import MODULES_FILE_ENV

log = logging.getLogger(__name__)
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


def with_start_method(executor_config: Mapping[str, Any]) -> Mapping[str, Any]:
    """``executor_config`` of ``multi_or_in_process_executor``, with the forkserver start method when it names none
    (and ``MAESTRO_STEP_START_METHOD`` is not ``spawn``, Dagster's default)."""
    multiprocess = executor_config.get("multiprocess")
    if not isinstance(multiprocess, Mapping) or multiprocess.get("start_method"):
        return executor_config
    if get_settings().step_start_method != START_METHOD:
        return executor_config
    if START_METHOD not in multiprocessing.get_all_start_methods():  # not on this platform: Dagster's default
        return executor_config
    start_method = {START_METHOD: {"preload_modules": list(PRELOAD)}}
    return {**executor_config, "multiprocess": {**multiprocess, "start_method": start_method}}


def start_step_server() -> None:
    """``prestart`` for a process about to run a job with the default executor: never fails (the executor tries
    again when the plan starts, and Dagster's own path starts a server on the first step)."""
    if get_settings().step_start_method != START_METHOD:
        return
    try:
        prestart()
    except Exception as exc:
        log.warning("could not start the step forkserver ahead of the steps: %s", exc)


class DelegatingExecutor(Executor):
    """An executor that runs its steps with another one (``inner``); subclasses add to ``execute``."""

    def __init__(self, inner: Executor) -> None:
        self._inner = inner

    @property
    def retries(self) -> Any:
        return self._inner.retries

    @property
    def step_dependency_config(self) -> Any:
        return self._inner.step_dependency_config

    def execute(self, plan_context: Any, execution_plan: Any) -> Iterator[Any]:
        return self._inner.execute(plan_context, execution_plan)


class _ForkserverExecutor(DelegatingExecutor):
    """Starts (or checks) the forkserver when the plan starts executing: after the wrappers outside it (the mirror
    tags the run with its worker first), before the first step."""

    def execute(self, plan_context: Any, execution_plan: Any) -> Iterator[Any]:
        start_step_server()
        return self._inner.execute(plan_context, execution_plan)


def with_forkserver_default(inner: ExecutorDefinition) -> ExecutorDefinition:
    """``inner`` (Dagster's ``multi_or_in_process_executor``: same name and config) whose multiprocess mode starts
    steps from a forkserver unless the run config names a start method."""

    def create(init_context: InitExecutorContext) -> Executor:
        creation_fn = inner.executor_creation_fn
        assert creation_fn is not None, f"executor {inner.name!r} has no creation function"
        config = with_start_method(init_context.executor_config)
        executor = creation_fn(
            InitExecutorContext(
                job=init_context.job,
                executor_def=init_context.executor_def,
                executor_config=config,
                instance=init_context.instance,
            )
        )
        return executor if config is init_context.executor_config else _ForkserverExecutor(executor)

    return ExecutorDefinition(
        name=inner.name,
        config_schema=inner.config_schema,  # type: ignore[arg-type]  # see mirror.live.mirrored_executor
        requirements=inner.get_requirements,
        executor_creation_fn=create,
        description=inner.description,
    )
