"""The Maestro run tags that the run coordinator and launcher read or add, and a run's execution id.

The webserver and daemon load the coordinator and launcher with their instance, so this module must not import
the compiler (nor the database layer): the tag names are copies of ``maestro_dagster.compiler``'s (a test checks
they are equal), and the execution id is derived with the leaf ``maestro_dagster.names`` by the very rule the
mirror uses (``maestro_dagster.compiler.runtime.execution_id_of_run``): the run's own tag, else its root run's
tag, else ``execution_id_for_run`` of the root run (its id and creation time). A re-execution therefore gets its
root's id, and a run launched without one (Dagster UI, ``dagster job launch``, schedules, sensors) the id its
execution row has in the tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from maestro_dagster.names import execution_id_for_run

TAG_EXECUTION_ID = "maestro/execution_id"
TAG_WORKFLOW_ID = "maestro/workflow_id"
ROOT_RUN_TAG = "dagster/root_run_id"


def execution_id_of(instance: Any, run: Any) -> str:
    """The execution ``run`` belongs to (the rule of ``execution_id_of_run``, reading the same run records)."""
    if run.tags.get(TAG_EXECUTION_ID):
        return run.tags[TAG_EXECUTION_ID]
    workflow_id = run.tags.get(TAG_WORKFLOW_ID) or run.job_name
    root_id = run.root_run_id or run.tags.get(ROOT_RUN_TAG) or run.run_id
    if root_id != run.run_id:
        root = instance.get_run_record_by_id(root_id)
        if root is not None:
            if root.dagster_run.tags.get(TAG_EXECUTION_ID):
                return root.dagster_run.tags[TAG_EXECUTION_ID]
            return execution_id_for_run(workflow_id, root_id, root.create_timestamp)
    record = instance.get_run_record_by_id(run.run_id)
    created = record.create_timestamp if record is not None else datetime.now(UTC)
    return execution_id_for_run(workflow_id, root_id, created)


def missing_execution_tag(instance: Any, run: Any) -> dict[str, str]:
    """``{TAG_EXECUTION_ID: id}`` for a Maestro workflow's run that lacks it; ``{}`` otherwise."""
    if not run.tags.get(TAG_WORKFLOW_ID) or run.tags.get(TAG_EXECUTION_ID):
        return {}
    return {TAG_EXECUTION_ID: execution_id_of(instance, run)}
