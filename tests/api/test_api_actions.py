"""Actions on executions through the API: cancel, pause + resume, approve / reject a review, resume a failure.

Every run starts a worker and a process per step (Dagster's multiprocess executor), so the module launches
its five executions at once and each test then acts on its own one: the start-ups overlap.
"""

from __future__ import annotations

import pytest
from _api_stack import ApiStack

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture(scope="module")
def launched(api_stack: ApiStack) -> dict[str, str]:
    """name -> execution id, all launched through API A before the first test of the module."""
    plan = {"cancel": "api_sleep", "pause": "api_sleep", "approve": "api_review", "reject": "api_review",
            "flaky": "api_flaky"}  # fmt: skip
    return {name: api_stack.execute(workflow)["execution_id"] for name, workflow in plan.items()}


def post(api: ApiStack, role: str, path: str, json: dict | None = None) -> dict:
    with api.client(role) as client:
        response = client.post(path, json=json)
    assert response.status_code in (200, 202), f"POST {path} -> {response.status_code}: {response.text}"
    return response.json()


def nodes_of(body: dict) -> dict[str, dict]:
    return {n["node_id"]: n for n in body["node_states"]}


def test_cancel_a_running_execution(api: ApiStack, launched: dict[str, str]) -> None:
    execution_id = launched["cancel"]
    api.wait_node(execution_id, "nap", "running", timeout=300)
    answer = post(api, "operator", f"/api/executions/{execution_id}/cancel")
    assert (answer["execution_id"], answer["status"]) == (execution_id, "cancelling")
    done = api.wait_status(execution_id, "cancelled")
    assert api.run_status(answer["run_id"]) == "CANCELED"
    nodes = nodes_of(done)
    assert nodes["nap"]["status"] == "failed" and nodes["after"]["status"] == "blocked", nodes
    assert nodes["nap"]["error"].startswith("cancelled by Maestro API user operator-bot at "), nodes["nap"]
    with api.client("operator") as client:  # nothing left to stop
        again = client.post(f"/api/executions/{execution_id}/cancel")
    assert again.status_code == 409 and again.json()["error"] == "conflict", again.text


def test_pause_then_resume_completes_in_the_same_execution(api: ApiStack, launched: dict[str, str]) -> None:
    execution_id = launched["pause"]
    api.wait_node(execution_id, "nap", "running", timeout=300)
    paused = post(api, "operator", f"/api/executions/{execution_id}/pause")
    assert paused["status"] == "pausing"
    body = api.wait_status(execution_id, "paused")
    assert nodes_of(body)["after"]["status"] != "completed"

    resumed = post(api, "operator", f"/api/executions/{execution_id}/resume")
    assert resumed["execution_id"] == execution_id and resumed["run_id"] != paused["run_id"]
    assert api.execution(execution_id)["status"] == "pending", "resumed: no longer paused"
    api.wait_runs(execution_id, 2)
    done = api.wait_status(execution_id, "completed", timeout=300)
    assert [(r["run_id"], r["kind"]) for r in done["runs"]] == [(paused["run_id"], "initial"),
                                                                 (resumed["run_id"], "resume")]  # fmt: skip
    nodes = nodes_of(done)
    assert {n["status"] for n in nodes.values()} == {"completed"}
    assert nodes["nap"]["attempt_count"] == 2, "the interrupted node ran in both runs"
    assert nodes["after"]["attempt_count"] == 1
    with api.client("viewer") as client:
        types = [e["type"] for e in client.get(f"/api/executions/{execution_id}/events").json()]
    assert types.count("workflow_paused") == 1 and types.count("workflow_completed") == 1
    assert types.index("workflow_paused") < types.index("workflow_completed")


def test_approve_a_waiting_review(api: ApiStack, launched: dict[str, str]) -> None:
    execution_id = launched["approve"]
    api.wait_node(execution_id, "review", "running", timeout=300)
    path = f"/api/executions/{execution_id}/nodes/review/approve"
    with api.client("viewer") as client:
        assert client.post(path, json={"approved": True}).status_code == 403
    with api.client("operator") as client:
        wrong = client.post(f"/api/executions/{execution_id}/nodes/publish/approve", json={})
        assert wrong.status_code == 409, wrong.text  # not a human_review node
        assert client.post(f"/api/executions/{execution_id}/nodes/ghost/approve", json={}).status_code == 404
    answer = post(api, "operator", path, {"approved": True, "comment": "looks good"})
    assert (answer["execution_id"], answer["status"]) == (execution_id, "approved")
    done = api.wait_status(execution_id, "completed", timeout=300)
    review = nodes_of(done)["review"]
    assert review["status"] == "completed" and review["node_type"] == "human_review"
    assert review["outputs"]["approved"] is True and review["outputs"]["comment"] == "looks good"
    assert review["outputs"]["decided_by"] == "operator-bot"


def test_reject_fails_the_node_with_the_comment(api: ApiStack, launched: dict[str, str]) -> None:
    execution_id = launched["reject"]
    api.wait_node(execution_id, "review", "running", timeout=300)
    answer = post(api, "operator", f"/api/executions/{execution_id}/nodes/review/approve",
                  {"approved": False, "comment": "needs a second look"})  # fmt: skip
    assert answer["status"] == "rejected"
    done = api.wait_status(execution_id, "failed", timeout=300)
    nodes = nodes_of(done)
    assert nodes["review"]["status"] == "failed"
    assert "needs a second look" in nodes["review"]["error"] and "operator-bot" in nodes["review"]["error"]
    assert nodes["publish"]["status"] == "blocked"
    assert done["error_node_id"] == "review"


def test_resume_a_failed_execution_into_the_same_id(api: ApiStack, launched: dict[str, str]) -> None:
    execution_id = launched["flaky"]
    failed = api.wait_status(execution_id, "failed", timeout=300)
    nodes = nodes_of(failed)
    assert (nodes["prepare"]["status"], nodes["flaky"]["status"], nodes["finish"]["status"]) == (
        "completed", "failed", "blocked",
    )  # fmt: skip
    assert "attempt 1 fails" in nodes["flaky"]["error"]

    resumed = post(api, "operator", f"/api/executions/{execution_id}/resume")
    assert (resumed["execution_id"], resumed["status"]) == (execution_id, "resuming")
    with api.client("operator") as client:  # a second resume does not launch a second re-execution
        twice = client.post(f"/api/executions/{execution_id}/resume")
    assert twice.status_code == 409 and twice.json()["details"]["status"] in ("pending", "running"), twice.text
    api.wait_runs(execution_id, 2)
    done = api.wait_status(execution_id, "completed", timeout=300)
    assert [r["kind"] for r in done["runs"]] == ["initial", "resume"]
    assert done["runs"][1]["run_id"] == resumed["run_id"]
    assert done["runs"][1]["parent_run_id"] == done["runs"][0]["run_id"]
    nodes = nodes_of(done)
    assert {n: s["status"] for n, s in nodes.items()} == {"prepare": "completed", "flaky": "completed",
                                                          "finish": "completed"}  # fmt: skip
    assert (nodes["prepare"]["attempt_count"], nodes["flaky"]["attempt_count"]) == (1, 2)
    assert done["progress_percent"] == 100.0 and done["failed_nodes"] == 0
    assert api.execution(resumed["run_id"])["execution_id"] == execution_id
    with api.client("viewer") as client:
        listed = client.get("/api/executions", params={"workflow_id": "api_flaky"}).json()
    assert [e["execution_id"] for e in listed] == [execution_id], "one execution, not one per run"
    with api.client("operator") as client:
        again = client.post(f"/api/executions/{execution_id}/resume")
    assert again.status_code == 409, again.text
