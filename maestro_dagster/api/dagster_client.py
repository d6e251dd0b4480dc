"""Talking to the running Dagster webserver over GraphQL: launch, re-execute, terminate, reload.

The API never runs a workflow itself: every run is launched through Dagster (its run coordinator queues it
and the daemon starts a run worker). Errors become ``DagsterUnavailableError`` (503) or ``ConflictError``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError
from dagster_graphql.client.query import LAUNCH_PIPELINE_REEXECUTION_MUTATION

from maestro_dagster.errors import ConflictError, DagsterUnavailableError

LOCATION = "maestro"
REPOSITORY = "maestro"


class DagsterGateway:
    def __init__(self, url: str, timeout: int = 60) -> None:
        parsed = urlparse(url)
        self.url = url
        self._client = DagsterGraphQLClient(
            parsed.hostname or "127.0.0.1",
            port_number=parsed.port,
            use_https=parsed.scheme == "https",
            timeout=timeout,
        )

    def _unavailable(self, action: str, exc: Exception) -> DagsterUnavailableError:
        return DagsterUnavailableError(
            f"Could not {action} through the Dagster webserver at {self.url}: {exc}. "
            "Check that `dagster-webserver` (or `maestro dev`) runs there, or set MAESTRO_DAGSTER_URL.",
            details={"dagster_url": self.url},
        )

    def ping(self) -> bool:
        try:
            self._client._execute("{ version }")
            return True
        except Exception:
            return False

    def reload_location(self) -> None:
        try:
            self._client.reload_repository_location(LOCATION)
        except Exception as exc:
            raise self._unavailable("reload the code location", exc) from exc

    def launch(self, job_name: str, run_config: dict[str, Any], tags: dict[str, str]) -> str:
        try:
            return self._client.submit_job_execution(
                job_name,
                repository_location_name=LOCATION,
                repository_name=REPOSITORY,
                run_config=run_config,
                tags=tags,
            )
        except DagsterGraphQLClientError as exc:
            raise self._unavailable(f"launch job {job_name!r}", exc) from exc
        except Exception as exc:
            raise self._unavailable(f"launch job {job_name!r}", exc) from exc

    def reexecute_from_failure(self, parent_run_id: str, tags: dict[str, str]) -> str:
        variables = {
            "reexecutionParams": {
                "parentRunId": parent_run_id,
                "strategy": "FROM_FAILURE",
                "extraTags": [{"key": k, "value": v} for k, v in tags.items()],
            }
        }
        try:
            data = self._client._execute(LAUNCH_PIPELINE_REEXECUTION_MUTATION, variables)
        except Exception as exc:
            raise self._unavailable("re-execute the run", exc) from exc
        result = data["launchPipelineReexecution"]
        if result["__typename"] != "LaunchRunSuccess":
            raise ConflictError(
                f"Dagster refused to re-execute run {parent_run_id}: {result.get('message') or result['__typename']}",
                details={"run_id": parent_run_id, "reason": result["__typename"]},
            )
        return result["run"]["runId"]

    def terminate(self, run_id: str) -> None:
        try:
            self._client.terminate_run(run_id)
        except DagsterGraphQLClientError as exc:
            raise ConflictError(f"Dagster could not terminate run {run_id}: {exc}", details={"run_id": run_id}) from exc
        except Exception as exc:
            raise self._unavailable(f"terminate run {run_id}", exc) from exc
