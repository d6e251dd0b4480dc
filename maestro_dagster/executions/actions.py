"""The actions on executions, one implementation for the CLI and the API: start, resume, cancel, pause, approve.

Each action is one rule written once; how it reaches Dagster is the ``Transport`` passed in (``LocalTransport``
for ``maestro run`` / ``maestro resume``, the API's GraphQL transport). Transactions begin here, one per step,
never across a call to Dagster:

- start: one write transaction checks the initial context against the workflow's ``inputs`` (``apply_inputs``:
  an ``InputError`` naming each bad input, nothing written nor launched; defaults filled in), creates the execution
  row and its pending node states (with the id the run will carry as its ``maestro/execution_id`` tag), then the
  transport launches the run. A launch that fails before
  Dagster has a run of the execution leaves it ``failed`` with the reason, except when the database itself stayed
  locked: then its row is removed (nothing half-written stays).
- resume: one write transaction checks the status (``RESUMABLE``) under a row lock and sets ``pending`` (a client
  polling for the end does not read the old end; a second resume gets 409), then the transport re-executes the
  latest run from failure; if that fails the previous status comes back. With ``from_node`` it is a replay
  (``executions.replay``): the node and its descendants re-run (Dagster's step selection), also on a completed
  execution, the other nodes' outputs reused.
- cancel / pause: a read finds the active run, then Dagster gets ``maestro/cancelled_by`` (and for pause
  ``maestro/pause_requested``) on the run and terminates it; the mirror records ``cancelled`` / ``paused``.
- approve: one write transaction records the decision on a ``human_review`` node (``approvals``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from dagster._core.storage.tags import MAX_RUNTIME_SECONDS_TAG

from maestro_dagster.approvals import record_decision
from maestro_dagster.db.repositories import RepositoryFactory
from maestro_dagster.db.retry import retry_locked
from maestro_dagster.db.session import get_db
from maestro_dagster.defs_store import require_valid
from maestro_dagster.errors import ConflictError, DatabaseError, MaestroError
from maestro_dagster.executions.queries import RESUMABLE, find_execution, latest_run
from maestro_dagster.executions.replay import TRIGGER_REPLAY, check_replayable, replayed_nodes, step_keys
from maestro_dagster.executions.transport import Transport, runs_of
from maestro_dagster.names import job_name
from maestro_dagster.settings import Settings
from maestro_dagster.spec import WorkflowSpec
from maestro_dagster.spec.inputs import apply_inputs
from maestro_dagster.spec.partitions import launch_run_config
from maestro_dagster.states import WorkflowStatus
from maestro_dagster.tags import TAG_CANCELLED_BY, TAG_PAUSE, TRIGGER_RESUME, launch_tags

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Launched:
    """An execution and the Dagster run an action launched for it."""

    execution_id: str
    run_id: str


def initial_context(context: dict[str, Any] | None, requirement: str | None) -> dict[str, Any]:
    """The execution's ``initial_context``: ``context`` with ``requirement`` (when given) as its ``requirement``."""
    merged = dict(context or {})
    if requirement is not None:
        merged["requirement"] = requirement
    return merged


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
    settings: Settings, workflow_id: str, context: dict[str, Any], trigger: str, actor: str | None = None
) -> tuple[str, WorkflowSpec]:
    """The execution row and its pending node states, in one write transaction; (execution id, its spec)."""
    metadata: dict[str, Any] = {"trigger": trigger, "job_name": job_name(workflow_id)}
    if actor is not None:
        metadata["requested_by"] = actor
    with get_db(settings, immediate=True) as session:
        repos = RepositoryFactory(session)
        require_valid(repos.workflow.require(workflow_id))
        # The workflow's inputs checked (InputError names each bad one: no row is written) and defaults filled in.
        context = apply_inputs(repos.execution.spec_of(workflow_id).inputs, context, workflow_id=workflow_id)
        execution = repos.execution.create(workflow_id, context, metadata=metadata)
        return execution.id, repos.execution.spec_of(workflow_id, execution.workflow_version)


def _abandon(settings: Settings, execution_id: str, exc: BaseException) -> None:
    """An execution whose launch failed before Dagster had a run of it."""
    with get_db(settings, immediate=True) as session:
        repos = RepositoryFactory(session).execution
        if isinstance(exc, DatabaseError):
            repos.delete(execution_id)
        else:
            reason = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            repos.update_status(execution_id, WorkflowStatus.FAILED, f"could not launch the run: {reason}")


def _has_run(transport: Transport, execution_id: str) -> bool:
    """Whether Dagster holds a run of the execution; False when its storage cannot be read either."""
    try:
        return bool(runs_of(transport.instance(), execution_id))
    except Exception:
        return False


def start(
    settings: Settings,
    transport: Transport,
    workflow_id: str,
    context: dict[str, Any],
    *,
    trigger: str,
    actor: str | None = None,
) -> Launched:
    """Create an execution of ``workflow_id`` and launch its run."""
    what = f"starting workflow {workflow_id}"
    execution_id, spec = retry_locked(
        lambda: create_execution(settings, workflow_id, context, trigger, actor), settings, what
    )
    context = apply_inputs(spec.inputs, context, workflow_id=workflow_id)  # as recorded: the defaults filled in
    tags = launch_tags(execution_id, trigger, workflow_id)
    bound = max_runtime_seconds(spec)
    if bound is not None:
        tags[MAX_RUNTIME_SECONDS_TAG] = str(bound)
    try:
        run_id = transport.launch(job_name(workflow_id), launch_run_config(spec, context), tags)
    except BaseException as exc:
        failure = exc
        if not _has_run(transport, execution_id):
            try:
                retry_locked(lambda: _abandon(settings, execution_id, failure), settings, f"recording {execution_id}")
            except MaestroError as second:  # the launch's own error is the one the caller is told
                log.warning("could not record that execution %s did not start: %s", execution_id, second.message)
        raise
    return Launched(execution_id, run_id)


def resume(settings: Settings, transport: Transport, ref: str, from_node: str | None = None) -> Launched:
    """Re-execute the execution's latest run from failure, into the same execution; completed nodes do not run
    again. With ``from_node``: replay that node and everything downstream of it (also on a completed execution),
    reusing the other nodes' outputs. The execution is ``pending`` from here until the mirror sees the new run
    start."""
    steps: list[str] | None = None
    with get_db(settings, immediate=True) as session:
        execution = find_execution(session, ref, for_update=True)
        latest = latest_run(execution)
        if from_node is not None:
            check_replayable(execution.id, execution.status, latest is not None)
            spec = RepositoryFactory(session).execution.spec_of(execution.workflow_id, execution.workflow_version)
            steps = step_keys(spec, replayed_nodes(spec, from_node))
        elif execution.status not in RESUMABLE or latest is None:
            raise ConflictError(
                f"Execution {execution.id} is {execution.status.value}; only failed, paused or cancelled executions "
                "with a run can be resumed (replay a completed one from a node: `maestro resume EXEC --from NODE`).",
                details={"status": execution.status.value},
            )
        assert latest is not None
        execution_id, parent, previous = execution.id, latest.run_id, execution.status
        execution.status = WorkflowStatus.PENDING
    try:
        if steps is None:
            run_id = transport.reexecute_from_failure(parent, launch_tags(execution_id, TRIGGER_RESUME))
        else:
            run_id = transport.reexecute_steps(parent, steps, launch_tags(execution_id, TRIGGER_REPLAY))
    except BaseException:
        with get_db(settings) as session:
            row = RepositoryFactory(session).execution.get(execution_id)
            if row is not None and row.status is WorkflowStatus.PENDING:
                row.status = previous
        raise
    return Launched(execution_id, run_id)


def _active_run(settings: Settings, ref: str) -> Launched:
    with get_db(settings) as session:
        execution = find_execution(session, ref)
        latest = latest_run(execution)
        if execution.status.is_terminal or execution.status is WorkflowStatus.PAUSED or latest is None:
            raise ConflictError(
                f"Execution {execution.id} is {execution.status.value} and has no active run to stop.",
                details={"status": execution.status.value},
            )
        return Launched(execution.id, latest.run_id)


def _stop(settings: Settings, transport: Transport, ref: str, tags: dict[str, str]) -> Launched:
    active = _active_run(settings, ref)
    transport.instance().add_run_tags(active.run_id, tags)  # before termination: the stopped node's error says who
    transport.terminate(active.run_id)
    return active


def cancel(settings: Settings, transport: Transport, ref: str, by: str) -> Launched:
    """Terminate the execution's active run; ``by`` is recorded as ``maestro/cancelled_by``."""
    return _stop(settings, transport, ref, {TAG_CANCELLED_BY: by})


def pause(settings: Settings, transport: Transport, ref: str, by: str) -> Launched:
    """Stop the active run so that resume continues from where it stopped (the mirror records ``paused``)."""
    return _stop(settings, transport, ref, {TAG_PAUSE: "true", TAG_CANCELLED_BY: by})


def approve(settings: Settings, ref: str, node_id: str, approved: bool, comment: str | None, actor: str) -> str:
    """Record (or replace) the decision on a human_review node; the waiting node picks it up. The execution id."""
    with get_db(settings, immediate=True) as session:
        execution = find_execution(session, ref)
        record_decision(session, execution.id, node_id, approved, comment, actor)
        return execution.id
