"""A leaf: the strings Maestro shares with Dagster and between its processes, and the one rule for the execution a
run belongs to.

Declared here once each: the run tags (and ``launch_tags``, the dict every launch starts with), the op metadata keys
the mirror reads back, and the PostgreSQL ``NOTIFY`` channel the mirror wakes the API's streams with. The code
location's names (repository, location, definitions module) and execution ids are in ``maestro_dagster.names``.

The compiler (the ``maestro`` resource), the mirror, the run coordinator and the launcher all use it; the webserver
and daemon load the coordinator and launcher with their instance, so it imports nothing of the project but the
leaf ``maestro_dagster.names`` (no compiler, no database layer). The rule: the run's own
``maestro/execution_id`` tag, else its root run's tag, else ``execution_id_for_run`` of the root run (its id and
creation time). A re-execution therefore gets its root's id, and a run launched without one (Dagster UI,
``dagster job launch``, schedules, sensors) the id its execution row has in the tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from maestro_dagster.names import execution_id_for_run

TAG_EXECUTION_ID = "maestro/execution_id"
TAG_WORKFLOW_ID = "maestro/workflow_id"
TAG_WORKFLOW_VERSION = "maestro/workflow_version"
TAG_TRIGGER = "maestro/trigger"
TAG_NODE_ID = "maestro/node_id"
ROOT_RUN_TAG = "dagster/root_run_id"
PARENT_RUN_TAG = "dagster/parent_run_id"
TAG_WORKER_PID = "maestro/worker_pid"  # the process orchestrating the run (its run worker), and its host
TAG_WORKER_HOST = "maestro/worker_host"
TAG_LAUNCH = "maestro/launch"  # "warm" or "cold": the run's worker was started by MaestroRunLauncher
TAG_PAUSE = "maestro/pause_requested"
TAG_CANCELLED_BY = "maestro/cancelled_by"  # who asked to cancel or pause the run, set before the termination
TRIGGER_RESUME = "resume"  # the trigger tag of a resume (re-execution from failure)
TAG_CONCURRENCY_LIMIT = "maestro/concurrency_limit"  # a job tag: the workflow's concurrency.limit (spec/concurrency.py)
TAG_BACKFILL = "maestro/backfill"  # the id of the backfill (``maestro backfill``, the API's) that launched the run
TAG_BACKFILL_LIMIT = "maestro/backfill_limit"  # a backfill's max_concurrent: its runs in progress at once
TAG_ON_LIMIT = "maestro/on_limit"  # a job tag: "queue" or "skip", what a run past that limit does
META_SKIPPED = "maestro/skipped"  # engine event metadata: the run coordinator skipped the run (on_limit: skip)

# Op metadata: what a node's op reports on its output, read back by the mirror.
META_STATUS = "maestro/status"
META_OUTPUT = "maestro/output"
META_ARTIFACTS = "maestro/artifacts"
META_INPUTS = "maestro/inputs"
META_QUALITY = "maestro/quality_score"
META_CONDITION = "maestro/condition"

NOTIFY_CHANNEL = "maestro_events"  # PostgreSQL NOTIFY: the mirror sends an execution id when its events commit


def launch_tags(
    execution_id: str,
    trigger: str,
    workflow_id: str | None = None,
    *,
    parent_run_id: str | None = None,
    root_run_id: str | None = None,
) -> dict[str, str]:
    """The tags a Maestro launch gives its run: execution id and trigger, the workflow id when known, and for a
    re-execution its parent run and root run (the parent's when ``root_run_id`` is not given)."""
    tags = {TAG_EXECUTION_ID: execution_id, TAG_TRIGGER: trigger}
    if workflow_id is not None:
        tags[TAG_WORKFLOW_ID] = workflow_id
    if parent_run_id is not None:
        tags[PARENT_RUN_TAG] = parent_run_id
        tags[ROOT_RUN_TAG] = root_run_id or parent_run_id
    return tags


def execution_id_of_run(instance: Any, run: Any) -> str:
    """The execution ``run`` (a ``DagsterRun``) belongs to; ``instance`` (a ``DagsterInstance``, or None) reads the
    root run and the run's creation time."""
    if run.tags.get(TAG_EXECUTION_ID):
        return run.tags[TAG_EXECUTION_ID]
    workflow_id = run.tags.get(TAG_WORKFLOW_ID) or run.job_name
    root_id = run.root_run_id or run.tags.get(ROOT_RUN_TAG) or run.run_id
    if root_id != run.run_id and instance is not None:
        root = instance.get_run_record_by_id(root_id)
        if root is not None:
            if root.dagster_run.tags.get(TAG_EXECUTION_ID):
                return root.dagster_run.tags[TAG_EXECUTION_ID]
            return execution_id_for_run(workflow_id, root_id, root.create_timestamp)
    record = instance.get_run_record_by_id(run.run_id) if instance is not None else None
    created = record.create_timestamp if record is not None else datetime.now(UTC)
    return execution_id_for_run(workflow_id, root_id, created)


def missing_execution_tag(instance: Any, run: Any) -> dict[str, str]:
    """``{TAG_EXECUTION_ID: id}`` for a Maestro workflow's run that lacks it; ``{}`` otherwise."""
    if not run.tags.get(TAG_WORKFLOW_ID) or run.tags.get(TAG_EXECUTION_ID):
        return {}
    return {TAG_EXECUTION_ID: execution_id_of_run(instance, run)}


RESOURCE_KEY = "maestro"  # the run-time resource every Maestro op reads (compiler/runtime.py)


def initial_context_of(run_config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The initial context a run's config carries, in either shape."""
    config = run_config or {}
    if isinstance(config.get("initial_context"), Mapping):
        return dict(config["initial_context"])
    resource = ((config.get("resources") or {}).get(RESOURCE_KEY) or {}).get("config") or {}
    context = resource.get("initial_context") if isinstance(resource, Mapping) else None
    return dict(context) if isinstance(context, Mapping) else {}


# dagster-celery's step tags (its ``dagster_celery.tags``), set from a node's ``queue:`` / ``priority:``
# (compiler/job.py); read by Dagster's Celery executor when it submits the step.
TAG_CELERY_QUEUE = "dagster-celery/queue"
TAG_CELERY_PRIORITY = "dagster-celery/priority"
