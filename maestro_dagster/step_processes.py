"""How the default (multiprocess) executor starts a step's process: from a forkserver with the run's modules preloaded.

Dagster's multiprocess executor starts every step in a new process, by default with the ``spawn`` start method: a
new interpreter that imports Dagster and the code location again (about 3.5 s per step on a small machine, most of a
short run's time). ``with_forkserver_default`` wraps an executor definition (same name and config schema) so that a
run whose config picks no ``start_method`` uses Dagster's ``forkserver`` start method with everything a step needs
preloaded: a server process imports, once per run process, the modules the run's process has imported from the
standard library and the installed packages (Dagster, its storage, the code location
``maestro_dagster.definitions``; ``step_server.py`` starts it and does the importing), and each step is a fork of
it, which only opens the instance and loads its job. Isolation between steps is what it was: every step (and every
retry of it) is still a process of its own, forked from a server that never runs a node and holds no connection, so
no state of one step reaches another; a step crash or kill ends that step only. A run config that names a start
method (``execution: {config: {multiprocess: {start_method: {spawn: {}}}}}``) gets exactly that, and
``MAESTRO_STEP_START_METHOD=spawn`` makes Dagster's ``spawn`` the default again (for node code that cannot be forked
from a process that imported it, which is rare).

The forkserver is one per process (Python's). It is started when the plan starts executing, with the environment of
that moment; a step forked from it sees that environment, as a spawned step sees its parent's. A process that runs
several runs with a changed environment in between (a test session; ``maestro run`` and run workers run one) gets
a new server for the new environment; the old one exits once the steps it started have ended.

``step_server.prestart`` starts it ahead of time: the warm run worker (``launcher/worker.py``) has it ready before
a run, and ``maestro run`` starts it before it imports Dagster, so both import at once.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from dagster import ExecutorDefinition
from dagster._core.executor.base import Executor
from dagster._core.executor.in_process import InProcessExecutor
from dagster._core.executor.init import InitExecutorContext
from dagster._core.executor.multiprocess import MultiprocessExecutor

from maestro_dagster.settings import get_settings
from maestro_dagster.step_server import PRELOAD, START_METHOD, prestart, start_step_server

__all__ = [
    "PRELOAD",
    "START_METHOD",
    "DelegatingExecutor",
    "hands_on_events_live",
    "prestart",
    "start_step_server",
    "with_forkserver_default",
]


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

    def __getattr__(self, name: str) -> Any:
        """What else the inner executor offers: an executor's loop reads its own executor from the run's context
        (Dagster's Celery loop calls ``app_args()`` on it), and that is the outermost wrapper."""
        if name == "_inner":  # not set yet (being unpickled): no recursion
            raise AttributeError(name)
        return getattr(self._inner, name)


class _ForkserverExecutor(DelegatingExecutor):
    """Starts (or checks) the forkserver when the plan starts executing: after the wrappers outside it (the mirror
    tags the run with its worker first), before the first step."""

    def execute(self, plan_context: Any, execution_plan: Any) -> Iterator[Any]:
        start_step_server()
        return self._inner.execute(plan_context, execution_plan)


def wrapped_executor(
    inner: ExecutorDefinition, wrap: Callable[[Executor], Executor], description: str | None = None
) -> ExecutorDefinition:
    """``inner`` (same name and config) whose executor is ``wrap`` of the one ``inner`` creates."""

    def create(init_context: InitExecutorContext) -> Executor:
        creation_fn = inner.executor_creation_fn
        assert creation_fn is not None, f"executor {inner.name!r} has no creation function"
        return wrap(creation_fn(init_context))

    return ExecutorDefinition(
        name=inner.name,
        # Dagster's annotation omits IDefinitionConfigSchema, which its own copy_for_configured passes and
        # convert_user_facing_definition_config_schema accepts as is.
        config_schema=inner.config_schema,  # type: ignore[arg-type]
        requirements=inner.get_requirements,
        executor_creation_fn=create,
        description=description or inner.description,
    )


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


def hands_on_events_live(executor: Executor) -> bool:
    """Does ``executor`` hand on each step event as it is stored (in-process and multiprocess steps, on this
    machine), rather than a step's events when the step is done (Celery: a worker's events reach the orchestrator
    with the task's result)?"""
    while isinstance(executor, DelegatingExecutor):
        if isinstance(executor, _ForkserverExecutor):
            return True
        executor = executor._inner
    return isinstance(executor, InProcessExecutor | MultiprocessExecutor)
