"""Runs launched through the real webserver (GraphQL, as the Dagster UI does, without any Maestro tag) carry
``maestro/execution_id`` from the moment they are queued: the id of their execution in the mirrored tables, the
same on a re-execution, and searchable with the UI's run filter. The job's ops are described by their node's name.
"""

from __future__ import annotations

import pytest
from _e2e_home import LOCATION, REPOSITORY, Stack
from _e2e_procs import wait_for
from dagster import DagsterRunStatus
from dagster_graphql.client.query import LAUNCH_PIPELINE_REEXECUTION_MUTATION

from maestro_dagster.names import execution_id_for_run
from maestro_dagster.tags import TAG_EXECUTION_ID

pytestmark = pytest.mark.e2e
FINISHED = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
RUNS_BY_TAG = """
query Runs($key: String!, $value: String!) { runsOrError(filter: {tags: [{key: $key, value: $value}]}) {
  __typename ... on Runs { results { runId } } } }
"""
OP_DESCRIPTIONS = """
query Ops($selector: PipelineSelector!) { pipelineOrError(params: $selector) { __typename
  ... on Pipeline { solidHandles { handleID solid { definition { description } } } } } }
"""


def run_ended(stack: Stack, run_id: str, timeout: float = 180):
    return wait_for(lambda: (r := stack.run(run_id)) is not None and r.status in FINISHED and r, timeout,
                    f"Dagster run {run_id} to end", interval=0.5)  # fmt: skip


def runs_tagged(stack: Stack, execution_id: str) -> set[str]:
    data = stack.graphql(RUNS_BY_TAG, {"key": TAG_EXECUTION_ID, "value": execution_id})["runsOrError"]
    assert data["__typename"] == "Runs", data
    return {r["runId"] for r in data["results"]}


def test_a_ui_launch_carries_its_execution_id_from_the_queue_on(e2e: Stack):
    run_id = e2e.launch("e2e_flow", {"case": "tagged at submit"})
    submitted = e2e.run(run_id)  # the webserver answered: the coordinator has queued the run
    print(f"run {run_id} right after the launch: {submitted.status.value}, tags {dict(submitted.tags)}")
    record = e2e.instance.get_run_record_by_id(run_id)
    expected = execution_id_for_run("e2e_flow", run_id, record.create_timestamp)
    assert submitted.tags.get(TAG_EXECUTION_ID) == expected
    assert runs_tagged(e2e, expected) == {run_id}  # the Dagster UI's run filter finds it

    assert run_ended(e2e, run_id).status == DagsterRunStatus.SUCCESS
    row = e2e.wait_run_mirrored(run_id)
    assert row.execution_id == expected and e2e.execution(expected).status.value == "completed"
    assert e2e.verify(run_id).returncode == 0


def test_a_reexecution_carries_its_roots_execution_id(e2e: Stack):
    counter = e2e.work / "flaky.count"
    counter.unlink(missing_ok=True)  # fails on its first attempt, succeeds on the second
    first = e2e.launch("e2e_flaky", {"case": "tag of a resume"}, **IN_PROCESS)
    assert run_ended(e2e, first).status == DagsterRunStatus.FAILURE
    execution_id = e2e.run(first).tags[TAG_EXECUTION_ID]

    data = e2e.graphql(LAUNCH_PIPELINE_REEXECUTION_MUTATION,
                       {"reexecutionParams": {"parentRunId": first, "strategy": "FROM_FAILURE"}})  # fmt: skip
    assert data["launchPipelineReexecution"]["__typename"] == "LaunchRunSuccess", data
    second = data["launchPipelineReexecution"]["run"]["runId"]
    assert e2e.run(second).tags.get(TAG_EXECUTION_ID) == execution_id
    assert run_ended(e2e, second).status == DagsterRunStatus.SUCCESS
    assert e2e.wait_run_mirrored(second).execution_id == e2e.wait_run_mirrored(first).execution_id == execution_id
    assert runs_tagged(e2e, execution_id) == {first, second}
    assert e2e.verify(first, second).returncode == 0


def test_the_ui_describes_each_op_by_its_node_name(e2e: Stack):
    selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "pipelineName": "e2e_flow"}
    data = e2e.graphql(OP_DESCRIPTIONS, {"selector": selector})["pipelineOrError"]
    assert data["__typename"] == "Pipeline", data
    descriptions = {h["handleID"]: h["solid"]["definition"]["description"] for h in data["solidHandles"]}
    assert set(descriptions) == {"extract", "transform", "report"}
    for node_id, text in descriptions.items():  # these nodes have no name: it is their id
        assert text.split("\n\n")[0] == node_id, text
        assert f"node `{node_id}`, executor `maestro_examples.nodes:" in text, text
