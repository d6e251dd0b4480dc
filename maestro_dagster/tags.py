"""A leaf: Maestro's run tags and the one rule for the execution a run belongs to.

The compiler (the ``maestro`` resource), the mirror, the run coordinator and the launcher all use it; the webserver
and daemon load the coordinator and launcher with their instance, so it imports nothing of the project but the
leaf ``maestro_dagster.names`` (no compiler, no database layer). The rule: the run's own
``maestro/execution_id`` tag, else its root run's tag, else ``execution_id_for_run`` of the root run (its id and
creation time). A re-execution therefore gets its root's id, and a run launched without one (Dagster UI,
``dagster job launch``, schedules, sensors) the id its execution row has in the tables.
"""

from __future__ import annotations

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
