"""The Dagster code location: repository ``maestro`` in location ``maestro`` (names that never change).

Jobs come from the valid rows of ``workflow_definitions``. The repository is lazy: listing job names reads
ids only; a job is compiled when it is asked for, so a run worker compiles only its own job. Syncing
``workflow_defs/`` into the table happens when the location lists its jobs (webserver, daemon, code
server), not in run workers, and can be turned off (``MAESTRO_SYNC_DEFS_ON_LOAD=false``). An invalid
definition produces no job and never breaks the location; it is visible in ``maestro defs list``. A valid
definition that still fails to compile (whatever the error) is isolated the same way: marked invalid with a
``compile_error`` problem, left out of the location, the other jobs unaffected.

Beside the workflow jobs the location has Maestro's own definitions (``maestro_dagster.assets``): the reporting
rollups' assets, asset checks, asset jobs and schedule, and retention's jobs and schedules. They are built once per
repository when first asked for (a workflow's run worker never asks), without reading any table, and their names
win: a workflow whose job name is one of ``RESERVED_JOB_NAMES`` has no job (logged).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dagster import (
    ExecutorDefinition,
    JobDefinition,
    RepositoryData,
    ResourceDefinition,
    multi_or_in_process_executor,
    repository,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from maestro_dagster.assets import RESERVED_JOB_NAMES, reporting_definitions
from maestro_dagster.compiler import build_job
from maestro_dagster.db.models import WorkflowDefinition
from maestro_dagster.db.repositories import COMPILE_ERROR, RepositoryFactory
from maestro_dagster.db.session import get_db
from maestro_dagster.defs_store import load_spec, origin_of, sync_directory
from maestro_dagster.distributed.executor import CELERY_EXECUTOR
from maestro_dagster.errors import DefinitionError, MaestroError, NotFoundError
from maestro_dagster.mirror import mirrored_executor
from maestro_dagster.mirror.sensor import maestro_mirror_sensor
from maestro_dagster.names import REPOSITORY_NAME, job_name
from maestro_dagster.policy import ExecutorPolicy, Origin
from maestro_dagster.resources import maestro_runtime, node_outputs_io_manager
from maestro_dagster.settings import Settings, get_settings
from maestro_dagster.spec import WorkflowSpec
from maestro_dagster.step_processes import with_forkserver_default
from maestro_dagster.triggers import all_triggers
from maestro_dagster.triggers.build import maestro_request_errors, specs_with_triggers

log = logging.getLogger(__name__)
_CHUNK = 500  # ids per IN (...) query: far below every backend's bound parameter limit
EXECUTOR = with_forkserver_default(multi_or_in_process_executor)  # steps forked from a preloaded server
MIRRORED_EXECUTOR = mirrored_executor(EXECUTOR)
MIRRORED_CELERY_EXECUTOR = mirrored_executor(CELERY_EXECUTOR)  # ``executor: celery`` (distributed/executor.py)


def executor_for(spec: WorkflowSpec, settings: Settings) -> ExecutorDefinition:
    """The job's executor: the workflow's ``executor:``, else ``MAESTRO_DEFAULT_EXECUTOR``; mirrored from inside the
    run unless ``MAESTRO_MIRROR_IN_RUN=false``."""
    celery = (spec.executor or settings.default_executor) == "celery"
    if settings.mirror_in_run:
        return MIRRORED_CELERY_EXECUTOR if celery else MIRRORED_EXECUTOR
    return CELERY_EXECUTOR if celery else EXECUTOR


class MaestroRepositoryData(RepositoryData):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._synced = False
        self._jobs: dict[str, tuple[str, JobDefinition]] = {}
        self._trigger_defs: tuple[list[Any], list[Any]] | None = None
        self._reporting_lock = threading.Lock()
        self._reporting_data: RepositoryData | None = None

    def _reporting(self) -> RepositoryData:
        """The repository data of ``maestro_dagster.assets``' definitions (built on first use, then kept)."""
        with self._reporting_lock:
            if self._reporting_data is None:
                repository = reporting_definitions().get_repository_def()
                self._reporting_data = repository._repository_data  # Dagster has no public name for it
            return self._reporting_data

    # -- index ------------------------------------------------------------------------------------
    def _sync_once(self) -> None:
        settings = get_settings()
        if self._synced or not settings.sync_defs_on_load:
            return
        self._synced = True
        with get_db(settings, immediate=True) as session:
            for result in sync_directory(session, settings.defs_dir, settings):
                if not result.valid:
                    log.warning("workflow definition %s is invalid and has no job", result.source)

    def _index(self) -> dict[str, tuple[str, str]]:
        """Job name -> (workflow id, content hash), for every valid definition."""
        with get_db() as session:
            rows = session.execute(
                select(WorkflowDefinition.id, WorkflowDefinition.content_hash).where(
                    WorkflowDefinition.is_valid.is_(True)
                )
            ).all()
        index = {job_name(workflow_id): (workflow_id, content_hash) for workflow_id, content_hash in rows}
        for name in set(index) & RESERVED_JOB_NAMES:
            log.warning("workflow %s has no job: its job name %s is a reporting job's", index.pop(name)[0], name)
        return index

    def get_job_names(self) -> Sequence[str]:
        with self._lock:
            self._sync_once()
        return sorted([*self._index(), *self._reporting().get_job_names()])

    def has_job(self, job_name: str) -> bool:
        if job_name in RESERVED_JOB_NAMES:  # a workflow's run worker never builds the reporting definitions
            return self._reporting().has_job(job_name)
        return job_name in self._index()

    def get_job(self, job_name: str) -> JobDefinition:
        if job_name in RESERVED_JOB_NAMES:
            return self._reporting().get_job(job_name)
        with self._lock:
            return self._job(job_name, self._index())

    def _job(self, job_name: str, index: Mapping[str, tuple[str, str]], *, listing: bool = False) -> JobDefinition:
        """The job from the cache or compiled now (call with the lock held).

        ``listing`` (the code location loading every job, as the webserver and daemon do) also takes Dagster's
        snapshot of the job (cached on it, and what the location computes next anyway), and a failure marks the
        definition invalid. A run worker asking for its one job neither snapshots nor marks: a failure there (a
        package missing on that machine, say) fails its run only."""
        entry = index.get(job_name)
        if entry is None:
            raise _no_job(job_name)
        cached = self._cached(job_name, entry[1])
        if cached is not None:
            return cached
        with get_db() as session:
            row = session.get(WorkflowDefinition, entry[0])
            if row is None:  # deleted since the index was read
                raise _no_job(job_name)
            stored = _Stored.of(row)
        return self._compile(job_name, stored, entry[1], listing=listing)

    def _cached(self, job_name: str, content_hash: str) -> JobDefinition | None:
        cached = self._jobs.get(job_name)
        return cached[1] if cached is not None and cached[0] == content_hash else None  # from this very content

    def _compile(self, job_name: str, stored: _Stored, content_hash: str, *, listing: bool) -> JobDefinition:
        """Compile the job of a stored definition read with the index entry ``content_hash`` (and cache it)."""
        settings = get_settings()
        workflow_id, spec, version, origin = stored.workflow_id, stored.spec(), stored.version, stored.origin
        try:
            job = build_job(
                spec,
                version=version,
                runtime_resource=maestro_runtime,
                executor_def=executor_for(spec, settings),
                extra_resources={"io_manager": node_outputs_io_manager},  # outputs every worker reads
                executors=ExecutorPolicy.for_origin(settings, origin),
            )
            if listing:
                job.get_job_index()  # a graph Dagster cannot snapshot fails here, not in the location's snapshot
        except Exception as exc:  # one definition that cannot compile never breaks the location
            raise self._compile_error(workflow_id, content_hash, job_name, exc, mark=listing) from None
        self._jobs[job_name] = (content_hash, job)
        return job

    def _compile_error(
        self, workflow_id: str, content_hash: str, job_name: str, exc: BaseException, *, mark: bool
    ) -> DefinitionError:
        """The error to raise for a compile failure; with ``mark``, also recorded on the definition (invalid)."""
        reason = exc.message if isinstance(exc, MaestroError) else f"{type(exc).__name__}: {str(exc)[:300]}"
        problem = {
            "code": COMPILE_ERROR,
            "location": "",
            "node_id": (exc.details or {}).get("node_id") if isinstance(exc, MaestroError) else None,
            "message": f"the definition could not be compiled into a Dagster job ({reason}): simplify it (see "
            "docs/security.md for the limits) or fix what the error names, then store it again "
            "(`maestro defs sync` or the API)",
        }
        log.error("workflow %s (job %s) cannot be compiled: %s", workflow_id, job_name, reason)
        if mark:
            try:
                with get_db(immediate=True) as session:
                    RepositoryFactory(session).workflow.mark_uncompilable(workflow_id, content_hash, problem)
            except MaestroError as db_exc:  # the job stays missing either way
                log.error("could not mark workflow %s invalid: %s", workflow_id, db_exc.message)
        return DefinitionError(
            f"Workflow {workflow_id!r} cannot be compiled into job {job_name!r}: {problem['message']}",
            details={"workflow_id": workflow_id, "errors": [problem]},
        )

    def get_all_jobs(self) -> Sequence[JobDefinition]:
        jobs = []
        with self._lock:
            self._sync_once()
            index = self._index()  # read once: one query per job would make this quadratic
            missing = {entry[0] for name, entry in index.items() if self._cached(name, entry[1]) is None}
            with get_db() as session:  # the rows to compile, in a few queries (not one session each)
                stored = _stored(session, missing)
            for name in sorted(index):
                workflow_id, content_hash = index[name]
                try:
                    job = self._cached(name, content_hash)
                    if job is None:
                        if workflow_id not in stored:  # deleted since the index was read
                            raise _no_job(name)
                        job = self._compile(name, stored[workflow_id], content_hash, listing=True)
                    jobs.append(job)
                except MaestroError as exc:  # one bad definition never breaks the location (already logged)
                    log.debug("workflow job %s is left out: %s", name, exc.message)
        return [*jobs, *self._reporting().get_all_jobs()]

    # -- everything else Dagster asks of a repository ----------------------------------------------
    def get_top_level_resources(self) -> Mapping[str, ResourceDefinition]:
        return {}

    def get_env_vars_by_top_level_resource(self) -> Mapping[str, Any]:
        return {}

    def _triggers(self) -> tuple[list[Any], list[Any]]:
        if self._trigger_defs is None:
            with self._lock:
                self._sync_once()
            with get_db() as session:
                self._trigger_defs = all_triggers(iter(specs_with_triggers(session)))
        return self._trigger_defs

    def get_all_schedules(self) -> Sequence[Any]:
        return [*self._triggers()[0], *self._reporting().get_all_schedules()]

    def get_source_assets_by_key(self) -> Mapping[Any, Any]:
        return self._reporting().get_source_assets_by_key()

    def get_assets_defs_by_key(self) -> Mapping[Any, Any]:
        return self._reporting().get_assets_defs_by_key()

    def get_asset_checks_defs_by_key(self) -> Mapping[Any, Any]:
        return self._reporting().get_asset_checks_defs_by_key()

    def get_asset_job_nodes(self) -> Sequence[Any]:
        return self._reporting().get_asset_job_nodes()

    def get_all_sensors(self) -> Sequence[Any]:
        return [maestro_mirror_sensor, maestro_request_errors, *self._triggers()[1]]


@dataclass(frozen=True)
class _Stored:
    """What compiling a job needs of its row, read inside the session (the job is built after it closed)."""

    workflow_id: str
    version: int
    origin: Origin
    parsed: WorkflowSpec | None = None
    error: MaestroError | None = None  # why the row has no spec (an invalid row: ``require_valid``'s error)

    @classmethod
    def of(cls, row: WorkflowDefinition) -> _Stored:
        try:
            return cls(row.id, row.version, origin_of(row.source), parsed=load_spec(row))
        except MaestroError as exc:
            return cls(row.id, row.version, origin_of(row.source), error=exc)

    def spec(self) -> WorkflowSpec:
        if self.parsed is None:
            raise self.error or _no_job(self.workflow_id)
        return self.parsed


def _stored(session: Session, workflow_ids: set[str]) -> dict[str, _Stored]:
    """The stored definitions of these workflows (those that still exist), a few hundred ids per query."""
    ids, found = sorted(workflow_ids), dict[str, _Stored]()
    for start in range(0, len(ids), _CHUNK):
        stmt = select(WorkflowDefinition).where(WorkflowDefinition.id.in_(ids[start : start + _CHUNK]))
        found.update((row.id, _Stored.of(row)) for row in session.scalars(stmt))
    return found


def _no_job(job_name: str) -> NotFoundError:
    return NotFoundError(
        f"No valid workflow definition compiles to job {job_name!r}; "
        "see `maestro defs list` for the stored definitions and their errors."
    )


# Dagster's annotation of @repository lists the list and dict forms only; it accepts a RepositoryData too.
@repository(name=REPOSITORY_NAME, description="Maestro workflows compiled from workflow_definitions")  # type: ignore[arg-type]
def maestro() -> MaestroRepositoryData:
    return MaestroRepositoryData()
