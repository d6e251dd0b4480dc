"""A workflow's ``concurrency: {limit, on_limit}`` held for every run submitted to ``MaestroRunCoordinator``.

The compiler puts the limit on the job's tags (``tags.TAG_CONCURRENCY_LIMIT``, ``tags.TAG_ON_LIMIT``), so every
run of the workflow carries it, whoever launched it (the Maestro API and CLI, the Dagster UI, schedules, sensors,
backfills, re-executions).

- ``queue``: ``queue_limits`` adds one Dagster tag concurrency limit ``{key: maestro/workflow_id, value: <id>,
  limit: N}`` per workflow that has a queued run carrying a limit (the lowest, if its queued runs carry several)
  to the coordinator's configured ones. The queued run coordinator daemon reads that config at every dequeue
  iteration and never starts a run while N runs of its workflow are in progress (starting, started, cancelling):
  Dagster's own counting, in the daemon's single dequeue pass. The runs of an API backfill with
  ``max_concurrent: N`` carry ``maestro/backfill`` and ``maestro/backfill_limit``: a tag limit on that backfill's
  id holds them to N the same way.
- ``skip``: ``submit_or_skip`` decides at submit time, under a lock per workflow (a PostgreSQL advisory lock when
  Dagster's run storage is PostgreSQL, else a file lock in ``DAGSTER_HOME``, which holds between the processes of
  one host): when N runs of the workflow are queued or in progress, the run is not queued; an engine event marked
  ``maestro/skipped`` (what the mirror turns into ``workflow_skipped``) is written and the run is reported
  cancelled with the message ``skipped_text`` makes. Counting and queueing happen under the lock, so simultaneous
  launches from several processes never get more than N runs through. The queue limit is added for these
  workflows too, so the daemon never starts more than N either.

A re-execution (resume, replay, Dagster's run retries) is a run of its workflow: it counts and is limited alike.

A node's ``pool:`` is Dagster's op concurrency: ``apply_pools`` sets the slots of each pool ``MAESTRO_POOLS``
names (``set_concurrency_slots`` of Dagster's event log storage, only where they differ), once per process, from
the coordinator before it queues a run or the daemon dequeues; a pool not named there has no limit.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dagster import DagsterRunStatus, MetadataValue, RunsFilter
from dagster._core.events import EngineEventData
from dagster._core.run_coordinator.queued_run_coordinator import RunQueueConfig
from dagster._core.storage.dagster_run import ACTIVE_RUN_STATUSES, DagsterRun

from maestro_dagster.settings import get_settings
from maestro_dagster.tags import (
    META_SKIPPED,
    TAG_BACKFILL,
    TAG_BACKFILL_LIMIT,
    TAG_CONCURRENCY_LIMIT,
    TAG_ON_LIMIT,
    TAG_WORKFLOW_ID,
)

log = logging.getLogger(__name__)

LOCK_FILE = ".maestro-concurrency.lock"
QUEUED_RUNS_READ = 1000  # queued runs read per dequeue iteration to find the workflows that set a limit
COUNTED_STATUSES = [DagsterRunStatus.QUEUED, *ACTIVE_RUN_STATUSES]  # what a skip decision counts


def run_limit(run: DagsterRun) -> tuple[str, int, str] | None:
    """(workflow id, limit, on_limit) of a run whose workflow sets ``concurrency``, else ``None``."""
    workflow_id, raw = run.tags.get(TAG_WORKFLOW_ID), run.tags.get(TAG_CONCURRENCY_LIMIT)
    if not workflow_id or not raw:
        return None
    try:
        limit = int(raw)
    except ValueError:
        return None
    return (workflow_id, limit, run.tags.get(TAG_ON_LIMIT) or "queue") if limit >= 1 else None


def _run_limits(run: DagsterRun) -> list[tuple[tuple[str, str], int]]:
    """The tag limits a queued run asks for: its workflow's ``concurrency.limit`` and its backfill's
    ``max_concurrent`` (``maestro/backfill_limit`` on the runs of an API backfill)."""
    found: list[tuple[tuple[str, str], int]] = []
    workflow = run_limit(run)
    if workflow is not None:
        found.append(((TAG_WORKFLOW_ID, workflow[0]), workflow[1]))
    backfill, raw = run.tags.get(TAG_BACKFILL), run.tags.get(TAG_BACKFILL_LIMIT) or ""
    if backfill and raw.isdigit() and int(raw) >= 1:
        found.append(((TAG_BACKFILL, backfill), int(raw)))
    return found


def skipped_text(workflow_id: str, limit: int) -> str:
    """The error message of an execution skipped by its workflow's limit."""
    return f"skipped: workflow {workflow_id!r} reached its concurrency limit {limit} (on_limit: skip)"


def queue_limits(instance: Any, config: RunQueueConfig) -> RunQueueConfig:
    """``config`` with a tag concurrency limit per workflow that has a queued run carrying a limit.

    A storage error is logged and the configured limits are returned unchanged: dequeuing never stops on it."""
    apply_pools(instance)
    try:
        queued = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.QUEUED]), limit=QUEUED_RUNS_READ)
    except Exception:  # the daemon must go on dequeuing with the static config
        log.exception("could not read the queued runs for the workflows' concurrency limits")
        return config
    limits: dict[tuple[str, str], int] = {}  # (tag key, tag value) -> the lowest limit its queued runs carry
    for run in queued:
        for scope, limit in _run_limits(run):
            limits[scope] = min(limit, limits.get(scope, limit))
    if not limits:
        return config
    configured = list(config.tag_concurrency_limits or [])
    taken = {(c.get("key"), c.get("value")) for c in configured if isinstance(c.get("value"), str)}
    added = [
        {"key": key, "value": value, "limit": limit}
        for (key, value), limit in sorted(limits.items())
        if (key, value) not in taken
    ]
    return config._replace(tag_concurrency_limits=[*configured, *added])


@contextlib.contextmanager
def workflow_lock(instance: Any, workflow_id: str) -> Iterator[None]:
    """Held by one submitter of a run of ``workflow_id`` at a time (see the module docstring)."""
    engine = getattr(instance.run_storage, "_engine", None)
    if engine is not None and engine.dialect.name == "postgresql":
        digest = hashlib.sha256(f"maestro/concurrency/{workflow_id}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
        return
    with (Path(instance.root_directory) / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def submit_or_skip(instance: Any, run: DagsterRun, submit: Callable[[], DagsterRun]) -> DagsterRun:
    """``submit()`` the run, unless its workflow is ``on_limit: skip`` and at its limit: then skip it."""
    apply_pools(instance)
    found = run_limit(run)
    if found is None or found[2] != "skip":
        return submit()
    workflow_id, limit, on_limit = found
    with workflow_lock(instance, workflow_id):
        counted = instance.get_runs_count(RunsFilter(tags={TAG_WORKFLOW_ID: workflow_id}, statuses=COUNTED_STATUSES))
        if counted < limit:
            return submit()
        text = skipped_text(workflow_id, limit)
        payload = {"workflow_id": workflow_id, "limit": limit, "on_limit": on_limit, "counted": counted}
        instance.report_engine_event(text, run, EngineEventData(metadata={META_SKIPPED: MetadataValue.json(payload)}))
        instance.report_run_canceled(run, message=text)
    return instance.get_run_by_id(run.run_id) or run


_pools_applied: set[int] = set()  # id() of the instances whose pools this process set
_pools_lock = threading.Lock()


def apply_pools(instance: Any, pools: dict[str, int] | None = None) -> None:
    """Set each pool's slots to ``pools`` (default: ``MAESTRO_POOLS``) once per instance of this process.

    An error (a storage down, slots over Dagster's maximum) is logged: it must not stop a submit or a dequeue."""
    with _pools_lock:
        if id(instance) in _pools_applied:
            return
        _pools_applied.add(id(instance))
        try:
            wanted = get_settings().pools if pools is None else pools
            storage = instance.event_log_storage
            if not wanted or not storage.supports_global_concurrency_limits:
                return
            current = {limit.name: limit.limit for limit in storage.get_pool_limits()}
            for name, slots in wanted.items():
                if current.get(name) != slots:
                    storage.set_concurrency_slots(name, slots)
        except Exception:
            log.exception("could not set the pools' slots from MAESTRO_POOLS")
