"""Create a workflow over the API, execute it, read the execution (by its id and by its Dagster run id)."""

from __future__ import annotations

import re

import pytest
from _api_stack import ApiStack
from _defs import chain, definition, node

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]
EXEC_ID = re.compile(r"^exec_api_created_\d{8}_\d{6}_[0-9a-f]{8}$")


def created_definition(api: ApiStack) -> dict:
    return definition(
        "api_created",
        {
            "start": {"executor": "noop"},
            "extract": node("echo", config={"output": {"rows": 7}}),
            "report": node(
                "write_file",
                config={"path": str(api.work / "out" / "created.txt"), "content": "created", "quality_score": 0.9},
            ),
        },
        chain("start", "extract", "report"),
        name="Created over the API",
        workflow_type="linear",
    )


def test_create_then_execute_right_away(api: ApiStack) -> None:
    with api.client("admin") as admin:
        created = admin.post("/api/workflows", json=created_definition(api))
        assert created.status_code == 201, created.text
        body = created.json()
        assert (body["workflow_id"], body["valid"], body["nodes"], body["edges"]) == ("api_created", True, 3, 2)
        assert "api_created" in api.job_names(), "the job must exist in Dagster when the create call returns"

        started = api.execute("api_created", {"who": "test"})
        execution_id = started["execution_id"]
        assert EXEC_ID.match(execution_id), execution_id
        assert started["workflow_id"] == "api_created" and started["run_id"]
        assert started["status"] in ("pending", "running") and started["started_at"]

        done = api.wait_status(execution_id, "completed")
        assert done["execution_id"] == execution_id
        assert (done["completed_nodes"], done["total_nodes"], done["progress_percent"]) == (3, 3, 100.0)
        nodes = {n["node_id"]: n for n in done["node_states"]}
        assert set(nodes) == {"start", "extract", "report"}
        for n in nodes.values():
            assert n["status"] == "completed" and n["attempt_count"] == 1, n
            assert n["duration"] is not None and n["duration"] >= 0 and n["started_at"] and n["completed_at"], n
        assert nodes["extract"]["outputs"]["rows"] == 7
        assert nodes["extract"]["outputs"]["global_context"] == {"who": "test"}
        assert nodes["report"]["artifacts"] == [str(api.work / "out" / "created.txt")]
        assert nodes["report"]["quality_score"] == pytest.approx(0.9)
        assert [(r["run_id"], r["kind"], r["status"]) for r in done["runs"]] == [
            (started["run_id"], "initial", "completed")
        ]

        by_run = api.execution(started["run_id"])
        assert by_run["execution_id"] == execution_id and by_run["node_states"] == done["node_states"]

        artifacts = admin.get(f"/api/executions/{execution_id}/artifacts").json()
        assert [(a["node_id"], a["size_bytes"]) for a in artifacts] == [("report", len("created"))]
        assert len(artifacts[0]["sha256"]) == 64

        events = admin.get(f"/api/executions/{execution_id}/events").json()
        types = [e["type"] for e in events]
        assert types[0] == "workflow_started" and types[-1] == "workflow_completed"
        assert types.count("node_completed") == 3 and types.count("workflow_completed") == 1
        assert {e["execution_id"] for e in events} == {execution_id}

        listed = admin.get("/api/executions", params={"workflow_id": "api_created"}).json()
        assert [e["execution_id"] for e in listed] == [execution_id]
        detail = admin.get("/api/workflows/api_created").json()
        assert detail["definition"]["id"] == "api_created"
        assert {e["id"] for e in detail["edges"]} == {"start-extract", "extract-report"}
        assert api.run_status(started["run_id"]) == "SUCCESS"


def test_unchanged_definition_keeps_its_version_and_update_adds_one(api: ApiStack) -> None:
    raw = created_definition(api) | {"id": "api_versions"}
    with api.client("admin") as admin:
        first = admin.post("/api/workflows", json=raw).json()
        again = admin.post("/api/workflows", json=raw).json()
        assert first["version"] == again["version"] == 1
        raw["description"] = "changed"
        replaced = admin.put("/api/workflows/api_versions", json=raw)
        assert replaced.status_code == 200 and replaced.json()["version"] == 2
        versions = admin.get("/api/workflows/api_versions/versions").json()
        assert [v["version"] for v in versions] == [1, 2] or [v["version"] for v in versions] == [2, 1]
        assert admin.delete("/api/workflows/api_versions").status_code == 204
        assert admin.get("/api/workflows/api_versions").status_code == 404
        assert "api_versions" not in api.job_names()
