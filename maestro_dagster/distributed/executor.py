"""The executor of a workflow with ``executor: celery``: Dagster's own Celery executor (dagster-celery), configured
from the settings.

Each step becomes a Celery task (``execute_plan``) on the step's queue (``dagster-celery/queue``, from the node's
or the workflow's ``queue:``; default ``dagster``) with its priority (``dagster-celery/priority``). Whoever launches
the run (API, Dagster UI, schedule, sensor, ``maestro run``), the process that orchestrates it submits the steps to
``MAESTRO_CELERY_BROKER_URL`` and waits for their results on ``MAESTRO_CELERY_BACKEND_URL``; ``maestro worker``
processes (``distributed/worker.py``) run them. Broker and backend are read when the run starts, never written into
the job or its run config (they may hold a password). The run config keeps only Dagster's ``retries`` switch.

Dagster requires node outputs that every worker can read: the jobs' IO manager stores them in Maestro's database
(``resources/outputs.py``), which every worker reaches.
"""

from __future__ import annotations

import warnings
from typing import Any

from dagster import ExecutorDefinition, executor, multiple_process_executor_requirements
from dagster._core.execution.retries import RetryMode, get_retries_config
from dagster_celery.config import DEFAULT_CONFIG
from dagster_celery.executor import CeleryExecutor

from maestro_dagster.settings import Settings, get_settings

# dagster-celery registers its task on a new app for each step it submits; Celery 5.7 warns each time.
warnings.filterwarnings("ignore", message="Task name 'execute_plan' is already registered")
EXECUTOR_NAME = "celery"  # Dagster's name for it (the run config's ``execution: {config: ...}`` is its config)
DEFAULT_QUEUE = "dagster"  # dagster-celery's default queue (a priority queue)


def celery_app_args(settings: Settings) -> dict[str, Any]:
    """The Celery app's arguments for the settings: what the orchestrating process and every worker share."""
    return {
        "broker": settings.celery_broker_url,
        "backend": settings.celery_backend_url,
        "include": [],
        "config_source": dict(DEFAULT_CONFIG, task_default_queue=DEFAULT_QUEUE),
    }


def _create(init_context: Any) -> CeleryExecutor:
    args = celery_app_args(get_settings())
    return CeleryExecutor(retries=RetryMode.from_config(init_context.executor_config["retries"]), **args)


CELERY_EXECUTOR: ExecutorDefinition = executor(
    name=EXECUTOR_NAME,
    config_schema={"retries": get_retries_config()},
    requirements=multiple_process_executor_requirements(),
)(_create)
