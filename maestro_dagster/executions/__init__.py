"""Executions: what the CLI and the API do with them, written once (``actions``), through a ``Transport`` to
Dagster (``transport``), with the reads both share (``queries``). See ``actions`` for where transactions begin."""

from maestro_dagster.executions.actions import (
    Launched,
    approve,
    cancel,
    create_execution,
    initial_context,
    max_runtime_seconds,
    pause,
    resume,
    start,
)
from maestro_dagster.executions.queries import RESUMABLE, find_execution, latest_run, list_executions
from maestro_dagster.executions.transport import IN_PROCESS, LocalTransport, Transport, recon_job, runs_of

__all__ = [
    "IN_PROCESS",
    "RESUMABLE",
    "Launched",
    "LocalTransport",
    "Transport",
    "approve",
    "cancel",
    "create_execution",
    "find_execution",
    "initial_context",
    "latest_run",
    "list_executions",
    "max_runtime_seconds",
    "pause",
    "recon_job",
    "resume",
    "runs_of",
    "start",
]
