"""Where a workflow's nodes run (issue 18): ``executor: local | celery``, ``queue:`` and ``priority:`` compiled onto
the job's executor and its ops' tags (Dagster's Celery executor reads ``dagster-celery/queue`` and ``/priority``)."""

from __future__ import annotations

import pytest
from _compiler_support import spec_of

from maestro_dagster.compiler import build_job
from maestro_dagster.definitions import executor_for
from maestro_dagster.errors import DefinitionError
from maestro_dagster.settings import Settings
from maestro_dagster.tags import TAG_CELERY_PRIORITY, TAG_CELERY_QUEUE


def raw(**fields):
    nodes = {"a": {"executor": "noop"}, "b": {"executor": "noop", "queue": "gpu", "priority": 8}}
    items = {"id": "placed", "nodes": nodes, "edges": [{"source": "a", "target": "b"}], **fields}
    items["nodes"] = {**nodes, **items.pop("extra_nodes", {})}
    return items


def op_tags(job, node_id):
    return job.graph.node_named(node_id).definition.tags


def test_queue_and_priority_become_the_celery_step_tags():
    job = build_job(spec_of(raw(executor="celery", queue="etl")))
    assert op_tags(job, "a")[TAG_CELERY_QUEUE] == "etl"  # the workflow's queue
    assert TAG_CELERY_PRIORITY not in op_tags(job, "a")
    assert op_tags(job, "b")[TAG_CELERY_QUEUE] == "gpu"  # the node's own wins
    assert op_tags(job, "b")[TAG_CELERY_PRIORITY] == "8"


def test_no_queue_named_leaves_the_default_queue():
    spec = spec_of({"id": "plain", "nodes": {"a": {"executor": "noop"}}, "edges": []})
    assert TAG_CELERY_QUEUE not in op_tags(build_job(spec), "a")


def test_a_for_each_node_s_fan_out_step_goes_to_its_queue_too():
    spec = spec_of(raw(extra_nodes={"c": {"executor": "noop", "for_each": "[1, 2]", "queue": "wide"}}))
    job = build_job(spec)
    assert op_tags(job, "c")[TAG_CELERY_QUEUE] == "wide"
    assert op_tags(job, "c__for_each")[TAG_CELERY_QUEUE] == "wide"


@pytest.mark.parametrize(
    ("workflow", "default", "expected"),
    [(None, "local", "multi_or_in_process_executor"), (None, "celery", "celery"), ("local", "celery",
     "multi_or_in_process_executor"), ("celery", "local", "celery")],
)  # fmt: skip
def test_the_executor_is_the_workflow_s_else_the_deployment_s(workflow, default, expected):
    fields = {"executor": workflow} if workflow else {}
    spec = spec_of(raw(**fields))
    assert executor_for(spec, Settings(MAESTRO_DEFAULT_EXECUTOR=default)).name == expected


@pytest.mark.parametrize(
    ("fields", "where"),
    [({"executor": "dask"}, "executor"), ({"queue": "has space"}, "queue"),
     ({"extra_nodes": {"c": {"executor": "noop", "priority": 10}}}, "priority")],
)  # fmt: skip
def test_bad_placement_is_a_clear_definition_error(fields, where):
    with pytest.raises(DefinitionError) as caught:
        spec_of(raw(**fields))
    assert where in str(caught.value)
