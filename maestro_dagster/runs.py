"""Starting and resuming executions through Dagster from this process (``maestro run`` / ``maestro resume``).

The execution row (and its pending node states) is created first, with the id the run carries as its
``maestro/execution_id`` tag; then the job runs through ``execute_job`` on the real instance. The run
mirrors itself (see ``mirror.live``); a last ``mirror_run`` after it returns makes sure the rows are final.
Resume = Dagster re-execution from failure of the execution's latest run, into the same execution.

On SQLite, many launches at once can meet a locked database (Maestro's or Dagster's own ``runs.db``): each write
of the launch is tried again within ``MAESTRO_SQLITE_LOCK_WAIT_SECONDS`` (``db.retry``); a launch that still
cannot start removes the execution row it created, so nothing half-written is left, and fails with one message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, ReexecutionOptions, RunsFilter, execute_job
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository
from dagster._core.storage.tags import MAX_RUNTIME_SECONDS_TAG

from maestro_dagster.db.enums import WorkflowStatus
from maestro_dagster.db.models import ExecutionRun
from maestro_dagster.db.repositories import RepositoryFactory
from maestro_dagster.db.retry import is_locked, retry_locked
from maestro_dagster.db.session import get_db
from maestro_dagster.defs_store import load_spec
from maestro_dagster.errors import ConflictError, DatabaseError, NotFoundError
from maestro_dagster.mirror import mirror_run
from maestro_dagster.names import DEFINITIONS_MODULE, REPOSITORY_NAME, job_name
from maestro_dagster.settings import Settings, get_settings
from maestro_dagster.spec import WorkflowSpec
from maestro_dagster.tags import TAG_EXECUTION_ID, TRIGGER_RESUME, launch_tags

IN_PROCESS = {"config": {"in_process": {}}}


@dataclass(frozen=True)
class LaunchResult:
    execution_id: str
    run_id: str
    success: bool


def _recon_job(workflow_id: str):
    # Dagster memoises ReconstructableJob.get_definition per process; a definition may have changed since an
    # earlier run in this process, so the job is looked up again (the repository recompiles on a new hash).
    ReconstructableJob.get_definition.cache_clear()
    repo = ReconstructableRepository.for_module(DEFINITIONS_MODULE, REPOSITORY_NAME, working_directory=str(Path.cwd()))
    return repo.get_reconstructable_job(job_name(workflow_id))


def max_runtime_seconds(spec: WorkflowSpec) -> int | None:
    """A bound for run monitoring when every node has a timeout: all attempts of all nodes, plus a minute."""
    total = 0.0
    for node_id in spec.node_ids:
        timeout = spec.effective_timeout(node_id)
        if timeout is None:
            return None
        policy = spec.effective_retry(node_id)
        attempts = policy.max_attempts if policy.retries_enabled else 1
        total += attempts * (timeout + policy.retry_delay_seconds)
    return int(total) + 60


def create_execution(
    workflow_id: str, initial_context: dict[str, Any], trigger: str, settings: Settings
) -> tuple[str, WorkflowSpec, int]:
    with get_db(settings, immediate=True) as session:
        repos = RepositoryFactory(session)
        row = repos.workflow.require(workflow_id)
        spec = load_spec(row)
        execution = repos.execution.create(
            workflow_id, initial_context, metadata={"trigger": trigger, "job_name": job_name(workflow_id)}
        )
        return execution.id, spec, row.version


def _runs_of(instance: DagsterInstance, execution_id: str) -> set[str]:
    return {r.dagster_run.run_id for r in instance.get_run_records(RunsFilter(tags={TAG_EXECUTION_ID: execution_id}))}


def _execute(
    instance: DagsterInstance, execution_id: str, settings: Settings, what: str, **job: Any
) -> tuple[str, bool]:
    """``execute_job`` to the end; tried again while Dagster's storage is locked before the run exists (once a
    run exists it is never started a second time), then the rows' final pass (tried again the same way)."""
    before = _runs_of(instance, execution_id)

    def attempt() -> tuple[str, bool]:
        try:
            with execute_job(instance=instance, **job) as result:
                return result.run_id, result.success
        except Exception as exc:
            started = _runs_of(instance, execution_id) - before
            if started and is_locked(exc):
                raise DatabaseError(
                    f"{what}: Dagster's storage was locked after run {sorted(started)[0]} was created; the run is "
                    "not started again (`maestro mirror sync` records how it ended)."
                ) from None
            raise

    run_id, success = retry_locked(attempt, settings, what)
    retry_locked(lambda: mirror_run(instance, run_id, settings), settings, f"recording run {run_id}")
    return run_id, success


def _forget_execution(execution_id: str, settings: Settings) -> None:
    """Remove an execution that never got a Dagster run (its launch failed): nothing half-written stays."""
    with get_db(settings, immediate=True) as session:
        RepositoryFactory(session).execution.delete(execution_id)


def run_workflow(
    instance: DagsterInstance,
    workflow_id: str,
    initial_context: dict[str, Any],
    *,
    trigger: str = "cli",
    in_process: bool = False,
    log_level: str | None = None,
    settings: Settings | None = None,
) -> LaunchResult:
    """Create an execution and run it to the end in this process (``log_level``: Dagster's console logs)."""
    settings = settings or get_settings()
    what = f"starting workflow {workflow_id}"
    execution_id, spec, _version = retry_locked(
        lambda: create_execution(workflow_id, initial_context, trigger, settings), settings, what
    )
    tags = launch_tags(execution_id, trigger, workflow_id)
    bound = max_runtime_seconds(spec)
    if bound is not None:
        tags[MAX_RUNTIME_SECONDS_TAG] = str(bound)
    run_config: dict[str, Any] = {"initial_context": initial_context}
    if in_process:
        run_config["execution"] = IN_PROCESS
    if log_level:
        run_config["loggers"] = {"console": {"config": {"log_level": log_level}}}
    try:
        run_id, success = _execute(
            instance, execution_id, settings, what, job=_recon_job(workflow_id), run_config=run_config, tags=tags
        )
    except BaseException:
        if not _runs_of(instance, execution_id):
            retry_locked(lambda: _forget_execution(execution_id, settings), settings, f"removing {execution_id}")
        raise
    return LaunchResult(execution_id, run_id, success)


def latest_run(execution_id: str, settings: Settings) -> tuple[str, str, str | None, WorkflowStatus]:
    """(workflow id, latest run id, root run id, execution status)."""
    with get_db(settings) as session:
        execution = RepositoryFactory(session).execution.require(execution_id)
        runs = sorted(execution.runs, key=lambda r: r.created_at)
        if not runs:
            raise NotFoundError(f"Execution {execution_id!r} has no Dagster run yet; nothing to resume.")
        last: ExecutionRun = runs[-1]
        return execution.workflow_id, last.run_id, last.root_run_id, execution.status


def resume_workflow(
    instance: DagsterInstance,
    execution_id: str,
    *,
    in_process: bool = False,
    log_level: str | None = None,
    settings: Settings | None = None,
) -> LaunchResult:
    """Re-execute the execution's latest run from failure; completed nodes are not run again."""
    settings = settings or get_settings()
    workflow_id, parent_id, root_id, status = latest_run(execution_id, settings)
    if status not in (WorkflowStatus.FAILED, WorkflowStatus.PAUSED, WorkflowStatus.CANCELLED):
        raise ConflictError(
            f"Execution {execution_id} is {status.value}; only failed, paused or cancelled executions can be resumed.",
            details={"status": status.value},
        )
    options = ReexecutionOptions.from_failure(parent_id, instance)
    tags = launch_tags(execution_id, TRIGGER_RESUME, parent_run_id=parent_id, root_run_id=root_id)
    parent = instance.get_run_by_id(parent_id)
    run_config = dict(parent.run_config or {}) if parent is not None else {}
    if in_process:
        run_config["execution"] = IN_PROCESS
    if log_level:
        run_config["loggers"] = {"console": {"config": {"log_level": log_level}}}
    else:
        run_config.pop("loggers", None)  # the parent's quiet console is not inherited by a verbose resume
    run_id, success = _execute(
        instance,
        execution_id,
        settings,
        f"resuming {execution_id}",
        job=_recon_job(workflow_id),
        run_config=run_config,
        tags=tags,
        reexecution_options=options,
    )
    return LaunchResult(execution_id, run_id, success)
