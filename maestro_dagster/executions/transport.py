"""How an action reaches Dagster: the ``Transport`` protocol, and the in-process transport of ``maestro run``.

The actions (``executions.actions``) decide what to launch, re-execute or stop; a transport does it. Two exist:

- ``LocalTransport`` (here): ``execute_job`` on the real instance in this process, to the end of the run, then
  the rows' final mirror pass. On SQLite each of its writes is tried again while the database is locked
  (``db.retry``), but a run that exists is never started a second time.
- ``GatewayTransport`` (``executions.gateway``, for the API and ``maestro backfill``): Dagster's GraphQL API,
  so the run coordinator queues the run and the daemon starts it; the run worker mirrors it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from dagster import DagsterInstance, DagsterRunStatus, ReexecutionOptions, RunsFilter, execute_job
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository

from maestro_dagster.db.retry import is_locked, retry_locked
from maestro_dagster.errors import DatabaseError, NotFoundError, ValidationError
from maestro_dagster.mirror import mirror_run
from maestro_dagster.names import DEFINITIONS_MODULE, REPOSITORY_NAME, job_name
from maestro_dagster.settings import Settings
from maestro_dagster.step_processes import start_step_server
from maestro_dagster.tags import PARENT_RUN_TAG, ROOT_RUN_TAG, TAG_EXECUTION_ID

# Dagster's executor config that runs every step in this process.
IN_PROCESS: dict[str, Any] = {"config": {"in_process": {}}}
IN_PROCESS_CAPABLE = "multi_or_in_process_executor"  # the local executor (Dagster's name), which IN_PROCESS configures


class Transport(Protocol):
    """What the actions need from Dagster."""

    def instance(self) -> DagsterInstance: ...

    def launch(self, job: str, run_config: dict[str, Any], tags: dict[str, str]) -> str:
        """Start a run of ``job``; its run id."""
        ...

    def reexecute_from_failure(self, parent_run_id: str, tags: dict[str, str]) -> str:
        """Re-execute ``parent_run_id`` from failure (its run config, the steps that did not succeed); the run id."""
        ...

    def reexecute_steps(self, parent_run_id: str, step_keys: list[str], tags: dict[str, str]) -> str:
        """Re-execute these steps of ``parent_run_id`` (its run config; the other steps' outputs loaded from the
        runs that produced them); the run id."""
        ...

    def terminate(self, run_id: str) -> None: ...


def runs_of(instance: DagsterInstance, execution_id: str) -> set[str]:
    """The ids of the Dagster runs tagged with ``execution_id``."""
    return {r.dagster_run.run_id for r in instance.get_run_records(RunsFilter(tags={TAG_EXECUTION_ID: execution_id}))}


def recon_job_named(name: str) -> ReconstructableJob:
    # Dagster memoises ReconstructableJob.get_definition per process; a definition may have changed since an
    # earlier run in this process, so the job is looked up again (the repository recompiles on a new hash).
    ReconstructableJob.get_definition.cache_clear()
    repo = ReconstructableRepository.for_module(DEFINITIONS_MODULE, REPOSITORY_NAME, working_directory=str(Path.cwd()))
    return repo.get_reconstructable_job(name)


def recon_job(workflow_id: str) -> ReconstructableJob:
    """The reconstructable Dagster job of a workflow (what ``execute_job`` runs in step processes too)."""
    return recon_job_named(job_name(workflow_id))


class LocalTransport:
    """Runs in this process to the end (``maestro run`` / ``maestro resume``); ``in_process`` runs every step here
    too, ``log_level`` sets Dagster's console log level (None: the run config's own)."""

    def __init__(
        self, instance: DagsterInstance, settings: Settings, *, in_process: bool = False, log_level: str | None = None
    ) -> None:
        self._instance, self.settings, self.in_process, self.log_level = instance, settings, in_process, log_level

    def instance(self) -> DagsterInstance:
        return self._instance

    def succeeded(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        return run is not None and run.status == DagsterRunStatus.SUCCESS

    def _config(self, run_config: dict[str, Any]) -> dict[str, Any]:
        config = dict(run_config)
        if self.in_process:
            config["execution"] = IN_PROCESS
        if self.log_level:
            config["loggers"] = {"console": {"config": {"log_level": self.log_level}}}
        else:
            config.pop("loggers", None)  # a parent's quiet console is not inherited by a verbose re-execution
        return config

    def launch(self, job: str, run_config: dict[str, Any], tags: dict[str, str]) -> str:
        return self._execute(tags, f"starting job {job}", job=recon_job_named(job), run_config=self._config(run_config))

    def reexecute_from_failure(self, parent_run_id: str, tags: dict[str, str]) -> str:
        return self._reexecute(parent_run_id, tags, None)

    def reexecute_steps(self, parent_run_id: str, step_keys: list[str], tags: dict[str, str]) -> str:
        return self._reexecute(parent_run_id, tags, list(step_keys))

    def _reexecute(self, parent_run_id: str, tags: dict[str, str], step_keys: list[str] | None) -> str:
        """From failure (``step_keys`` None), else these steps (Dagster's step selection)."""
        parent = self._instance.get_run_by_id(parent_run_id)
        if parent is None:
            raise NotFoundError(f"Dagster has no run {parent_run_id}; it cannot be re-executed.")
        tags = {**tags, PARENT_RUN_TAG: parent_run_id, ROOT_RUN_TAG: parent.root_run_id or parent_run_id}
        options = (
            ReexecutionOptions.from_failure(parent_run_id, self._instance)
            if step_keys is None
            else ReexecutionOptions(parent_run_id=parent_run_id, step_selection=step_keys)
        )
        return self._execute(
            tags,
            f"re-executing run {parent_run_id}",
            job=recon_job_named(parent.job_name),
            run_config=self._config(dict(parent.run_config or {})),
            reexecution_options=options,
        )

    def terminate(self, run_id: str) -> None:
        self._instance.run_launcher.terminate(run_id)

    @staticmethod
    def _check_in_process(job: Any) -> None:
        """``--in-process`` is the local executor's mode: a job whose executor is another (``executor: celery``)
        gets a clear error, not Dagster's run-config error."""
        definition = job.get_definition()
        if definition.executor_def.name != IN_PROCESS_CAPABLE:
            raise ValidationError(
                f"job {definition.name!r} runs its nodes with the {definition.executor_def.name!r} executor "
                "(the workflow's `executor:` or MAESTRO_DEFAULT_EXECUTOR), which has no in-process mode: run it "
                "without --in-process"
            )

    def _execute(self, tags: dict[str, str], what: str, **job: Any) -> str:
        """``execute_job`` to the end; tried again while Dagster's storage is locked before the run exists (once a
        run exists it is never started a second time), then the rows' final pass (tried again the same way)."""
        instance, execution_id = self._instance, tags[TAG_EXECUTION_ID]
        if self.in_process:
            self._check_in_process(job["job"])
        before = runs_of(instance, execution_id)
        if not self.in_process:  # the step forkserver imports while Dagster creates and plans the run
            start_step_server()

        def attempt() -> str:
            try:
                # Not entered (``with``): entering rebuilds the run's plan to read outputs, which are not read here
                # (and which Dagster cannot rebuild for a for_each run with failure handlers: KeyError 'x[0]').
                return execute_job(instance=instance, tags=tags, **job).run_id
            except Exception as exc:
                started = runs_of(instance, execution_id) - before
                if started and is_locked(exc):
                    raise DatabaseError(
                        f"{what}: Dagster's storage was locked after run {sorted(started)[0]} was created; the run "
                        "is not started again (`maestro mirror sync` records how it ended)."
                    ) from None
                raise

        run_id = retry_locked(attempt, self.settings, what)
        retry_locked(lambda: mirror_run(instance, run_id, self.settings), self.settings, f"recording run {run_id}")
        return run_id
