"""Talking to the running Dagster webserver over GraphQL: launch, re-execute (from failure, or chosen steps: a
replay), terminate, reload, and the states of the schedules and sensors.

The API never runs a workflow itself: every run is launched through Dagster (its run coordinator queues it
and the daemon starts a run worker). Errors become ``DagsterUnavailableError`` (503), ``ConflictError`` (409, Dagster
refused an action on a run) or ``ValidationError`` (422, Dagster refused the run config). What the client is told is
generic: what failed, that Dagster is unreachable or refused (with the GraphQL error type, e.g.
``PipelineNotFoundError``, as ``details.reason``) and what to do; Dagster's own text (GraphQL queries, variables,
Python errors) goes to the server log only.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import requests
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError
from dagster_graphql.client.query import LAUNCH_PARTITION_BACKFILL_MUTATION, LAUNCH_PIPELINE_REEXECUTION_MUTATION

from maestro_dagster.errors import ConflictError, DagsterUnavailableError, NotFoundError, ValidationError
from maestro_dagster.names import LOCATION_NAME, REPOSITORY_NAME
from maestro_dagster.tags import PARENT_RUN_TAG, ROOT_RUN_TAG

log = logging.getLogger(__name__)
GRAPHQL_TYPE = re.compile(r"^[A-Z][A-Za-z]{2,80}$")  # an error's __typename: safe to show, unlike its message
CONFIG_REFUSED = {"RunConfigValidationInvalid", "PipelineConfigValidationInvalid"}
INTERNAL = {"PythonError", "UnauthorizedError"}
HAPPENED = {"unreachable": "could not be reached", "timeout": "did not answer in time", "error": "failed to answer"}
RUNNING = (
    "Check that `dagster-webserver` and `dagster-daemon` (or `maestro dev`) run there on this project's workspace, "
    "or set MAESTRO_DAGSTER_URL"
)
NOT_LOADED = (
    f"Dagster has not loaded this job: reload the code location {LOCATION_NAME!r} (Dagster UI, Deployment), or store "
    "the definition again through the API"
)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and what caused it, outermost first (the GraphQL client wraps transport errors twice)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def reason_of(exc: BaseException) -> str:
    """A short code of what went wrong: Dagster's GraphQL error type, else unreachable / timeout / error."""
    first = exc.args[0] if isinstance(exc, DagsterGraphQLClientError) and exc.args else None
    if isinstance(first, str) and GRAPHQL_TYPE.match(first):
        return first
    chain = _chain(exc)
    if any(isinstance(e, requests.exceptions.ConnectionError | ConnectionError) for e in chain):
        return "unreachable"
    if any(isinstance(e, requests.exceptions.Timeout | TimeoutError) for e in chain):
        return "timeout"
    return "error"


def detail_of(exc: BaseException) -> str:
    """Everything the exception chain says, for the server log."""
    return " <- ".join(f"{type(e).__name__}: {e}" for e in _chain(exc))


TRIGGER_STATES_QUERY = """
query MaestroTriggerStates($selector: RepositorySelector!) {
  repositoryOrError(repositorySelector: $selector) {
    __typename
    ... on Repository {
      schedules { name scheduleState { status } }
      sensors { name sensorState { status } }
    }
  }
}
"""
READ_TIMEOUT_SECONDS = 5  # a read the UI waits for (trigger states): a hung webserver must not hold the page


class DagsterGateway:
    """One webserver's GraphQL API. Each thread has its own pair of clients (actions, reads): Dagster's client holds
    one connection and refuses a second request while one is under way (``TransportAlreadyConnected``), and the API
    serves requests on many threads."""

    def __init__(self, url: str, timeout: int = 60) -> None:
        parsed = urlparse(url)
        self.url, self._timeout = url, timeout
        self._host, self._port, self._https = parsed.hostname or "127.0.0.1", parsed.port, parsed.scheme == "https"
        self._local = threading.local()

    def _new_client(self, seconds: int) -> DagsterGraphQLClient:
        return DagsterGraphQLClient(self._host, port_number=self._port, use_https=self._https, timeout=seconds)

    @property
    def _client(self) -> DagsterGraphQLClient:
        """This thread's client for actions (launch, re-execute, terminate, reload)."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._new_client(self._timeout)
        return client

    @property
    def _reads(self) -> DagsterGraphQLClient:
        """This thread's client for reads a page waits for (short timeout)."""
        client = getattr(self._local, "reads", None)
        if client is None:
            client = self._local.reads = self._new_client(READ_TIMEOUT_SECONDS)
        return client

    def _logged(self, action: str, exc: BaseException) -> str:
        reason = reason_of(exc)
        log.warning("Dagster webserver at %s: could not %s (%s): %s", self.url, action, reason, detail_of(exc))
        return reason

    def _unavailable(self, action: str, exc: Exception) -> DagsterUnavailableError:
        reason = self._logged(action, exc)
        happened = HAPPENED.get(reason, f"refused the request ({reason})")
        advice = NOT_LOADED if reason in ("PipelineNotFoundError", "JobNotFoundError") else RUNNING
        return DagsterUnavailableError(
            f"Could not {action}: the Dagster webserver at {self.url} {happened}. {advice}; then try again. The "
            "API server's log has Dagster's answer.",
            details={"dagster_url": self.url, "reason": reason},
        )

    def ping(self) -> bool:
        try:
            self._client._execute("{ version }")
            return True
        except Exception:
            return False

    def trigger_states(self) -> dict[str, str]:
        """Dagster's instigation status of every schedule and sensor of the code location's repository, by name:
        ``running`` or ``stopped``. ``DagsterUnavailableError`` when the webserver cannot say (unreachable, or it
        has not loaded the repository)."""
        selector = {"repositoryName": REPOSITORY_NAME, "repositoryLocationName": LOCATION_NAME}
        try:
            data = self._reads._execute(TRIGGER_STATES_QUERY, {"selector": selector})
        except Exception as exc:
            raise self._unavailable("read the states of the schedules and sensors", exc) from exc
        repository = data["repositoryOrError"]
        if repository.get("__typename") != "Repository":
            reason = str(repository.get("__typename"))
            refusal = DagsterGraphQLClientError(reason if GRAPHQL_TYPE.match(reason) else "error", repository)
            raise self._unavailable("read the states of the schedules and sensors", refusal)
        states = {s["name"]: s["scheduleState"]["status"] for s in repository.get("schedules") or []}
        states.update({s["name"]: s["sensorState"]["status"] for s in repository.get("sensors") or []})
        return {name: str(status).lower() for name, status in states.items()}

    def reload_location(self) -> None:
        try:
            self._client.reload_repository_location(LOCATION_NAME)
        except Exception as exc:
            raise self._unavailable("reload the code location", exc) from exc

    def launch(self, job_name: str, run_config: dict[str, Any], tags: dict[str, str]) -> str:
        try:
            return self._client.submit_job_execution(
                job_name,
                repository_location_name=LOCATION_NAME,
                repository_name=REPOSITORY_NAME,
                run_config=run_config,
                tags=tags,
            )
        except Exception as exc:
            if reason_of(exc) in CONFIG_REFUSED:
                reason = self._logged(f"launch job {job_name!r}", exc)
                raise ValidationError(
                    f"Dagster refused the run config of job {job_name!r} ({reason}): send `initial_context` as a "
                    "JSON object; the API server's log has Dagster's answer.",
                    details={"reason": reason},
                ) from exc
            raise self._unavailable(f"launch job {job_name!r}", exc) from exc

    def reexecute_from_failure(self, parent_run_id: str, tags: dict[str, str]) -> str:
        variables = {
            "reexecutionParams": {
                "parentRunId": parent_run_id,
                "strategy": "FROM_FAILURE",
                "extraTags": [{"key": k, "value": v} for k, v in tags.items()],
            }
        }
        return self._reexecution(variables, parent_run_id, "unchanged enough to re-execute from failure")

    def reexecute_steps(self, parent: Any, step_keys: list[str], tags: dict[str, str]) -> str:
        """Re-execute these steps of the ``DagsterRun`` ``parent`` (a replay): ``launchPipelineReexecution`` with
        ``executionParams.stepKeys`` and the parent in its ``executionMetadata``, so Dagster loads the other steps'
        outputs from the runs that produced them."""
        root = parent.root_run_id or parent.run_id
        tags = {**tags, PARENT_RUN_TAG: parent.run_id, ROOT_RUN_TAG: root}
        variables = {
            "executionParams": {
                "selector": {
                    "repositoryLocationName": LOCATION_NAME,
                    "repositoryName": REPOSITORY_NAME,
                    "jobName": parent.job_name,
                },
                "runConfigData": dict(parent.run_config or {}),
                "stepKeys": list(step_keys),
                "executionMetadata": {
                    "parentRunId": parent.run_id,
                    "rootRunId": root,
                    "tags": [{"key": k, "value": v} for k, v in tags.items()],
                },
            }
        }
        return self._reexecution(variables, parent.run_id, "unchanged enough to re-execute these nodes")

    def _reexecution(self, variables: dict[str, Any], parent_run_id: str, needs: str) -> str:
        """``launchPipelineReexecution`` with these variables; the new run's id."""
        try:
            data = self._client._execute(LAUNCH_PIPELINE_REEXECUTION_MUTATION, variables)
        except Exception as exc:
            raise self._unavailable("re-execute the run", exc) from exc
        result = data["launchPipelineReexecution"]
        reason = result["__typename"]
        if reason != "LaunchRunSuccess":
            refusal = DagsterGraphQLClientError(reason, result.get("message") or result.get("errors"))
            if reason in INTERNAL or not GRAPHQL_TYPE.match(reason):
                raise self._unavailable(f"re-execute run {parent_run_id}", refusal)
            self._logged(f"re-execute run {parent_run_id}", refusal)
            raise ConflictError(
                f"Dagster refused to re-execute run {parent_run_id} ({reason}): check the run in the Dagster UI "
                f"(its job must still exist, {needs}).",
                details={"run_id": parent_run_id, "reason": reason},
            )
        return result["run"]["runId"]

    def launch_backfill(self, job_name: str, partition_keys: list[str], tags: dict[str, str]) -> str:
        """Dagster's partition backfill of these windows of ``job_name`` (what the Dagster UI's "Launch backfill"
        sends), its runs submitted by the webserver at once (``forceSynchronousSubmission``: the daemon's own copy
        of the code location is reloaded only every minute, so it may not know a workflow just stored), each with
        the partition's config and tags plus ``tags``, queued for the daemon to start; the backfill's id."""
        selector = {
            "partitionSetName": f"{job_name}_partition_set",  # Dagster's partition set of a partitioned job
            "repositorySelector": {"repositoryName": REPOSITORY_NAME, "repositoryLocationName": LOCATION_NAME},
        }
        params = {
            "selector": selector,
            "partitionNames": list(partition_keys),
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
            "forceSynchronousSubmission": True,
        }
        action = f"launch a backfill of job {job_name!r}"
        try:
            data = self._client._execute(LAUNCH_PARTITION_BACKFILL_MUTATION, {"backfillParams": params})
        except Exception as exc:
            raise self._unavailable(action, exc) from exc
        result = data["launchPartitionBackfill"]
        reason = result["__typename"]
        if reason != "LaunchBackfillSuccess":
            refusal = DagsterGraphQLClientError(reason, result.get("message"))
            raise self._unavailable(action, refusal)
        return str(result["backfillId"])

    def terminate(self, run_id: str) -> None:
        try:
            self._client.terminate_run(run_id)
        except Exception as exc:
            reason = reason_of(exc)
            if reason in HAPPENED or reason in INTERNAL:  # not reached, or failed inside: not a refusal
                raise self._unavailable(f"terminate run {run_id}", exc) from exc
            self._logged(f"terminate run {run_id}", exc)
            raise ConflictError(
                f"Dagster could not terminate run {run_id} ({reason}): it may have ended meanwhile; read the "
                "execution's status again.",
                details={"run_id": run_id, "reason": reason},
            ) from exc


class GatewayTransport:
    """The ``executions.Transport`` of the API and ``maestro backfill``: runs through the webserver's GraphQL API
    (queued by the run coordinator, started by the daemon), Dagster's instance (opened on first use) for run tags
    and run lookups."""

    def __init__(self, gateway: DagsterGateway, instance: Callable[[], Any]) -> None:
        self.gateway, self._instance = gateway, instance

    def instance(self) -> Any:
        return self._instance()

    def launch(self, job: str, run_config: dict[str, Any], tags: dict[str, str]) -> str:
        return self.gateway.launch(job, run_config, tags)

    def reexecute_from_failure(self, parent_run_id: str, tags: dict[str, str]) -> str:
        return self.gateway.reexecute_from_failure(parent_run_id, tags)

    def reexecute_steps(self, parent_run_id: str, step_keys: list[str], tags: dict[str, str]) -> str:
        parent = self.instance().get_run_by_id(parent_run_id)
        if parent is None:
            raise NotFoundError(f"Dagster has no run {parent_run_id}; it cannot be re-executed.")
        return self.gateway.reexecute_steps(parent, step_keys, tags)

    def terminate(self, run_id: str) -> None:
        self.gateway.terminate(run_id)
