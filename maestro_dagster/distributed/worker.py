"""``maestro worker``: a Celery worker that runs the steps of ``executor: celery`` runs (``distributed/executor.py``).

A worker machine needs the package, the database URL and the broker URL, nothing else: no shared filesystem, no
``dagster.yaml`` of the orchestrator. Its Dagster instance is its own, made from its settings the way every
``maestro`` command makes one (``instance.prepare_dagster_env``: ``DAGSTER_HOME`` under its own ``MAESTRO_HOME``,
Dagster's storage in the deployment's PostgreSQL database), not the orchestrating process's (whose ``InstanceRef``
names directories of that machine). A step loads its job from the code location ``maestro_dagster.definitions``
(the workflow's row in ``workflow_definitions``), reads its inputs from and writes its outputs to ``node_outputs``
(``resources/outputs.py``), and stores its events in Dagster's event log, which the mirror reads as for any run.

The task is Dagster-celery's ``execute_plan`` (same name and arguments, so Dagster's executor submits to it),
with the settings a worker of unknown machines needs:
- ``acks_late`` and ``reject_on_worker_lost``: the broker holds a step's message until the step is done, so a
  worker killed mid-node hands its step back and another worker runs it again (the node's attempt starts again);
- a step process dies with its worker (``PR_SET_PDEATHSIG`` on Linux), so a killed worker leaves no node running;
- prefetch 1: a worker takes one step per free slot and leaves the rest to the others;
- ``SIGTERM`` is Celery's warm shutdown: the worker takes no new step and exits once its running steps are done.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any

from celery import Celery
from celery.app import trace
from celery.signals import worker_process_init
from dagster import DagsterInstance
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.events import EngineEventData
from dagster._core.execution.api import create_execution_plan, execute_plan_iterator
from dagster._grpc.types import ExecuteStepArgs
from dagster._serdes import serialize_value, unpack_value
from dagster_celery.config import TASK_EXECUTE_PLAN_NAME
from dagster_celery.core_execution_loop import DELEGATE_MARKER
from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app

from maestro_dagster.distributed.executor import celery_app_args
from maestro_dagster.errors import ConfigError
from maestro_dagster.instance import prepare_dagster_env
from maestro_dagster.names import DEFINITIONS_MODULE
from maestro_dagster.settings import Settings

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1  # prctl(2)
_instance: DagsterInstance | None = None  # this worker process's instance, opened by its first step


def _process_instance() -> DagsterInstance:
    global _instance
    if _instance is None:
        _instance = DagsterInstance.get()  # DAGSTER_HOME prepared by ``run_worker`` from this worker's settings
    return _instance


def execute_steps(
    hostname: str, execute_step_args_packed: dict[str, Any], executable_dict: dict[str, Any], *, redelivered: bool
) -> list:
    """Run the steps of one task in this process and return their serialized events (the task's result).
    ``redelivered``: the broker handed the task back from a worker that was lost while running it."""
    args = unpack_value(execute_step_args_packed, as_type=ExecuteStepArgs)
    instance = _process_instance()
    recon_job = ReconstructableJob.from_dict(executable_dict)
    run = instance.get_run_by_id(args.run_id)
    if run is None:
        raise ConfigError(
            f"run {args.run_id} is not in this worker's Dagster storage: start `maestro worker` with the "
            "deployment's MAESTRO_DATABASE_URL (the database of the API and the daemon)"
        )
    plan = create_execution_plan(
        recon_job, run.run_config, step_keys_to_execute=args.step_keys_to_execute, known_state=args.known_state
    )
    steps = ", ".join(args.step_keys_to_execute or [])
    single = plan.step_handle_for_single_step_plans()
    again = " again (handed back by a worker that was lost while running them)" if redelivered else ""
    metadata = {"step_keys": steps, "Celery worker": hostname, "redelivered": str(redelivered).lower()}
    started = instance.report_engine_event(
        f"Executing steps {steps} in celery worker{again}",
        run,
        EngineEventData(metadata, marker_end=DELEGATE_MARKER),
        CeleryExecutor,
        step_key=single.to_key() if single is not None else None,
    )
    events = [started]
    events.extend(
        execute_plan_iterator(plan, recon_job, run, instance, retry_mode=args.retry_mode, run_config=run.run_config)
    )
    return [serialize_value(event) for event in events]


def _die_with_worker(**_: Any) -> None:
    """In each pool process: be killed when the worker's main process dies (Linux), not run a node on alone."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError) as exc:  # not fatal: the worker still hands the step back when it dies
            log.warning("could not tie the pool process to its worker: %s", exc)


def worker_app(settings: Settings) -> Celery:
    """The Celery app of a worker: dagster-celery's (queues, routes, priorities) with Maestro's ``execute_plan``."""
    app = make_app(CeleryExecutor.for_cli(**celery_app_args(settings)).app_args())

    @app.task(bind=True, name=TASK_EXECUTE_PLAN_NAME, acks_late=True, reject_on_worker_lost=True)
    def execute_plan(self: Any, execute_step_args_packed: dict[str, Any], executable_dict: dict[str, Any]) -> list:
        redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
        return execute_steps(self.request.hostname, execute_step_args_packed, executable_dict, redelivered=redelivered)

    trace.LOG_SUCCESS = "Task %(name)s[%(id)s] succeeded in %(runtime)ss"  # not the step's events (its result)
    app.conf.worker_prefetch_multiplier = 1
    app.conf.worker_hijack_root_logger = False
    worker_process_init.connect(_die_with_worker, weak=False)
    return app


def worker_argv(queues: Sequence[str], concurrency: int, name: str | None, loglevel: str) -> list[str]:
    """Celery's ``worker`` arguments for ``maestro worker``."""
    node_name = name or f"maestro-{'-'.join(queues)}@{socket.gethostname()}"
    return [
        "worker",
        f"--loglevel={loglevel}",
        f"--concurrency={concurrency}",
        "--prefetch-multiplier=1",
        f"--queues={','.join(queues)}",
        f"--hostname={node_name}",
        "--without-gossip",  # workers never talk to each other: the broker and the database are all they share
        "--without-mingle",
    ]


def run_worker(settings: Settings, queues: Sequence[str], concurrency: int, name: str | None = None) -> None:
    """Serve ``queues`` until stopped (SIGTERM or Ctrl-C: finish the running steps, then exit). The code location
    is imported first, so the pool's processes fork with it loaded (a step only compiles its job)."""
    prepare_dagster_env(settings)
    importlib.import_module(DEFINITIONS_MODULE)  # the code location, loaded once before the pool forks
    app = worker_app(settings)
    app.worker_main(worker_argv(queues, concurrency, name, settings.log_level))
