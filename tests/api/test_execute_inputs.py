"""POST /api/workflows/{id}/execute against a workflow's typed inputs (issue 17, point 1), on SQLite and PostgreSQL
through the served app (its Dagster is unreachable: a launch attempt would answer 503, so a 422 proves nothing was
launched): each bad input named in one 422 ``invalid_inputs``, no execution row left; the CLI's ``--requirement``
equivalent (the body's ``requirement``) counts as the ``requirement`` input."""

from __future__ import annotations

from pathlib import Path

import yaml
from sqlalchemy import func, select

from maestro_dagster.db.models import WorkflowExecution
from maestro_dagster.db.session import get_db

EXAMPLE = yaml.safe_load((Path(__file__).resolve().parents[2] / "workflow_defs" / "typed_inputs.yaml").read_text())
WITH_REQUIREMENT = {"id": "needs_requirement", "nodes": {"a": {"executor": "noop"}},
                    "inputs": {"requirement": {"type": "string", "required": True}}}  # fmt: skip


def count(settings) -> int:
    with get_db(settings) as session:
        return session.scalar(select(func.count()).select_from(WorkflowExecution)) or 0


def test_execute_with_bad_inputs_is_a_422_naming_each_and_launches_nothing(served):
    served.store(EXAMPLE)
    before = count(served.settings)
    with served.client("operator") as client:
        answer = client.post(
            "/api/workflows/typed_inputs/execute",
            json={"initial_context": {"rows": "ten", "size": "huge", "recipients": "me", "free": 1}},
        )
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "invalid_inputs"
    errors = {e["input"]: e for e in body["details"]["errors"]}
    assert {name: e["code"] for name, e in errors.items()} == {
        "region": "missing_input", "size": "not_in_enum", "rows": "wrong_type", "recipients": "wrong_type",
    }  # fmt: skip
    for name, error in errors.items():
        assert error["location"] == f"initial_context.{name}" and repr(name) in body["message"]
    assert "use one of 'small', 'large'" in errors["size"]["message"]
    assert count(served.settings) == before == 0


def test_the_requirement_field_fills_a_requirement_input(served):
    served.store(WITH_REQUIREMENT)
    with served.client("operator") as client:
        missing = client.post("/api/workflows/needs_requirement/execute", json={})
        given = client.post("/api/workflows/needs_requirement/execute", json={"requirement": "ship it"})
    assert missing.status_code == 422 and missing.json()["details"]["errors"][0]["input"] == "requirement"
    # valid: the launch is attempted, and the unreachable Dagster answers 503 (not a 422 of the inputs)
    assert given.status_code == 503, given.text
    assert given.json()["error"] == "dagster_unavailable"
