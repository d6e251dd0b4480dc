"""Replay from a node through the API: ``POST /api/executions/{id}/resume`` with ``{"from_node": "<node id>"}``.

The refusals are checked on the in-process server (``served``: no Dagster, an execution's rows written here); the
replay itself on the real stack (Dagster webserver + daemon, two API processes) with its ``api_echo`` workflow.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from _api_stack import ApiStack
from _served import Served

from maestro_dagster.db.models import ExecutionRun
from maestro_dagster.db.repositories import RepositoryFactory
from maestro_dagster.db.session import get_db
from maestro_dagster.states import RunKind, WorkflowStatus


def stored_execution(served: Served, status: WorkflowStatus) -> str:
    """An execution of the served definition (``a -> b``) in ``status``, with one run Dagster never had."""
    served.store()
    with get_db(served.settings) as session:
        execution = RepositoryFactory(session).execution.create("served", {})
        execution.status = status
        session.add(
            ExecutionRun(
                run_id=f"run-{execution.id[-8:]}",
                execution_id=execution.id,
                root_run_id=f"run-{execution.id[-8:]}",
                kind=RunKind.INITIAL,
                status=status,
                created_at=datetime.now(UTC),
            )
        )
        return execution.id


def status_of(served: Served, execution_id: str) -> str:
    with served.client("viewer") as client:
        return client.get(f"/api/executions/{execution_id}").json()["status"]


def test_replay_from_an_unknown_node_is_422_naming_the_valid_ones(served: Served) -> None:
    execution_id = stored_execution(served, WorkflowStatus.COMPLETED)
    with served.client("operator") as client:
        answer = client.post(f"/api/executions/{execution_id}/resume", json={"from_node": "nope"})
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "validation_error"
    assert "'nope'" in body["message"] and "a, b" in body["message"]
    assert body["details"] == {"node": "nope", "valid_nodes": ["a", "b"]}
    assert status_of(served, execution_id) == "completed"


@pytest.mark.parametrize("status", [WorkflowStatus.RUNNING, WorkflowStatus.PENDING])
def test_replay_of_an_active_execution_is_409(served: Served, status: WorkflowStatus) -> None:
    execution_id = stored_execution(served, status)
    with served.client("operator") as client:
        answer = client.post(f"/api/executions/{execution_id}/resume", json={"from_node": "a"})
    assert answer.status_code == 409, answer.text
    body = answer.json()
    assert body["error"] == "conflict" and body["details"] == {"status": status.value}
    assert f"is {status.value}" in body["message"] and "cancel" in body["message"]


def test_replay_request_is_validated(served: Served) -> None:
    execution_id = stored_execution(served, WorkflowStatus.COMPLETED)
    with served.client("operator") as client:
        for bad in ({"from_node": ""}, {"from_node": 3}, {"from": "a"}, {"from_node": "x" * 1000}):
            answer = client.post(f"/api/executions/{execution_id}/resume", json=bad)
            assert answer.status_code == 422, (bad, answer.text)
            assert "Traceback" not in answer.text
        missing = client.post("/api/executions/exec_nope/resume", json={"from_node": "a"})
    assert missing.status_code == 404, missing.text
    with served.client("viewer") as client:  # an operator's action
        assert client.post(f"/api/executions/{execution_id}/resume", json={"from_node": "a"}).status_code == 403
    assert status_of(served, execution_id) == "completed"


def test_a_replay_dagster_cannot_launch_leaves_the_execution_as_it_was(served: Served) -> None:
    execution_id = stored_execution(served, WorkflowStatus.COMPLETED)
    with served.client("operator") as client:
        answer = client.post(f"/api/executions/{execution_id}/resume", json={"from_node": "b"})
    assert answer.status_code in (404, 503), answer.text  # Dagster has no such run / is unreachable here
    assert "Traceback" not in answer.text
    assert status_of(served, execution_id) == "completed"


@pytest.mark.e2e
@pytest.mark.postgres
def test_replay_a_completed_execution_through_the_api(api: ApiStack) -> None:
    execution_id = api.execute("api_echo")["execution_id"]
    first = api.wait_status(execution_id, "completed", timeout=300)
    before = {n["node_id"]: n for n in first["node_states"]}

    with api.client("operator") as client:
        answer = client.post(f"/api/executions/{execution_id}/resume", json={"from_node": "transform"})
    assert answer.status_code == 202, answer.text
    replayed = answer.json()
    assert (replayed["execution_id"], replayed["status"]) == (execution_id, "resuming")
    assert "transform" in replayed["message"]
    with api.client("operator") as client:  # while it runs, a second replay is a conflict
        twice = client.post(f"/api/executions/{execution_id}/resume", json={"from_node": "transform"})
    assert twice.status_code == 409 and twice.json()["details"]["status"] in ("pending", "running"), twice.text

    api.wait_runs(execution_id, 2)
    done = api.wait_status(execution_id, "completed", timeout=300)
    assert [(r["kind"], r["status"]) for r in done["runs"]] == [("initial", "completed"), ("replay", "completed")]
    assert done["runs"][1]["run_id"] == replayed["run_id"]
    assert done["runs"][1]["parent_run_id"] == done["runs"][0]["run_id"]
    nodes = {n["node_id"]: n for n in done["node_states"]}
    assert {n: s["status"] for n, s in nodes.items()} == dict.fromkeys(("extract", "transform", "report"), "completed")
    assert [nodes[n]["attempt_count"] for n in ("extract", "transform", "report")] == [1, 2, 2]
    extract = nodes["extract"]
    assert (extract["started_at"], extract["outputs"]) == (
        before["extract"]["started_at"], before["extract"]["outputs"],
    )  # fmt: skip
    assert nodes["transform"]["started_at"] > before["report"]["completed_at"]
    assert nodes["transform"]["outputs"]["dependencies"] == ["extract"]  # extract's output of the first run
    assert done["progress_percent"] == 100.0 and done["failed_nodes"] == 0
    out = api.maestro("mirror", "verify", "--run", replayed["run_id"])
    assert "1 execution(s) checked, 0 difference(s)" in out, out
