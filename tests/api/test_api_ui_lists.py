"""What the web UI's lists read, served in-process on SQLite and PostgreSQL (``served``, no Dagster behind it): a
workflow's last execution and 30-day success rate in ``GET /api/workflows`` (two statements for a whole page),
``since`` / ``until`` on ``GET /api/executions``, and node inputs in an execution's status answer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from _served import DEFINITION
from sqlalchemy import event
from sqlalchemy.engine import Engine

from maestro_dagster.db.models import NodeState, WorkflowExecution
from maestro_dagster.db.session import get_db

NOW = datetime.now(UTC)


def _executions(settings, *rows: tuple[str, str, str, datetime]) -> None:
    """(execution id, workflow id, status, created_at) rows."""
    with get_db(settings) as session:
        for execution_id, workflow_id, status, created in rows:
            session.add(WorkflowExecution(id=execution_id, workflow_id=workflow_id, workflow_version=1, status=status,
                                          total_nodes=2, created_at=created, updated_at=created))  # fmt: skip


@contextmanager
def _statements() -> Iterator[list[str]]:
    """The SQL statements any engine of this process runs meanwhile (the served app's included)."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def _listed(served) -> dict[str, dict]:
    answer = served.client("viewer").get("/api/workflows?limit=1000")
    assert answer.status_code == 200, answer.text
    return {w["workflow_id"]: w for w in answer.json()}


def test_workflows_show_their_last_execution_and_success_rate(served):
    for workflow_id in ("busy", "running", "idle", "old"):
        served.store({**DEFINITION, "id": workflow_id})
    _executions(
        served.settings,
        ("b-old-ok", "busy", "completed", NOW - timedelta(days=40)),  # outside the 30 days: not in the rate
        ("b-old-ok2", "busy", "completed", NOW - timedelta(days=31)),
        ("b-ok", "busy", "completed", NOW - timedelta(days=3)),
        ("b-fail", "busy", "failed", NOW - timedelta(days=2)),
        ("b-fail2", "busy", "failed", NOW - timedelta(days=1)),
        ("b-ok2", "busy", "completed", NOW - timedelta(hours=5)),
        ("b-ok3", "busy", "completed", NOW - timedelta(hours=4)),
        ("b-cancel", "busy", "cancelled", NOW - timedelta(hours=1)),  # the latest; neither completed nor failed
        ("r-run", "running", "running", NOW - timedelta(minutes=5)),
        ("r-pending", "running", "pending", NOW - timedelta(days=1)),
        ("o-ok", "old", "completed", NOW - timedelta(days=60)),
    )
    listed = _listed(served)
    busy = listed["busy"]
    assert busy["last_execution_status"] == "cancelled"
    assert datetime.fromisoformat(busy["last_execution_at"]) == NOW - timedelta(hours=1)
    assert busy["success_rate"] == pytest.approx(60.0)  # 3 completed of 5 finished in the last 30 days
    assert listed["running"]["last_execution_status"] == "running" and listed["running"]["success_rate"] is None
    assert listed["old"]["last_execution_status"] == "completed" and listed["old"]["success_rate"] is None
    idle = listed["idle"]
    assert (idle["last_execution_status"], idle["last_execution_at"], idle["success_rate"]) == (None, None, None)

    # the same instant: the larger id is the latest (a stable answer)
    _executions(served.settings, ("r-tie-a", "running", "failed", NOW), ("r-tie-b", "running", "completed", NOW))
    running = _listed(served)["running"]
    assert running["last_execution_status"] == "completed" and running["success_rate"] == pytest.approx(50.0)


def test_the_workflow_list_reads_executions_in_two_statements_whatever_its_size(served):
    def execution_reads() -> int:
        with _statements() as seen:
            _listed(served)
        return sum("workflow_executions" in s for s in seen)

    served.store()
    _executions(served.settings, ("one", "served", "completed", NOW))
    assert execution_reads() == 2
    for n in range(30):
        served.store({**DEFINITION, "id": f"wf-{n}"})
        _executions(served.settings, (f"e-{n}", f"wf-{n}", "failed", NOW - timedelta(minutes=n)))
    assert execution_reads() == 2
    assert _listed(served)["wf-7"]["last_execution_status"] == "failed"


def test_replace_answers_the_workflow_with_its_executions(served):
    served.store()
    _executions(served.settings, ("s-ok", "served", "completed", NOW - timedelta(hours=2)),
                ("s-fail", "served", "failed", NOW - timedelta(hours=1)))  # fmt: skip
    answer = served.client("admin").put("/api/workflows/served", json=DEFINITION)  # unchanged: no Dagster reload
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["last_execution_status"] == "failed" and body["success_rate"] == pytest.approx(50.0)
    assert body == _listed(served)["served"]


def _page(served, **params: str):
    return served.client("viewer").get("/api/executions", params=params)


def test_executions_are_filtered_on_created_at(served):
    served.store()
    start = datetime(2026, 3, 1, tzinfo=UTC)
    _executions(served.settings, *[(f"day-{d}", "served", "completed", start + timedelta(days=d)) for d in range(5)])

    def ids(**params: str) -> list[str]:
        answer = _page(served, **params)
        assert answer.status_code == 200, answer.text
        return [e["execution_id"] for e in answer.json()]

    assert ids() == ["day-4", "day-3", "day-2", "day-1", "day-0"]
    # since inclusive, until exclusive
    assert ids(since="2026-03-02T00:00:00Z", until="2026-03-04T00:00:00Z") == ["day-2", "day-1"]
    assert ids(since="2026-03-03T00:00:00Z") == ["day-4", "day-3", "day-2"]
    assert ids(until="2026-03-02T00:00:00Z") == ["day-0"]
    assert ids(since="2026-03-03") == ["day-4", "day-3", "day-2"]  # a date alone: its midnight UTC
    assert ids(since="2026-03-03T00:00:00") == ["day-4", "day-3", "day-2"]  # no offset: UTC
    assert ids(since="2026-03-03T02:00:00+02:00") == ["day-4", "day-3", "day-2"]  # an offset: converted
    assert ids(since="2026-03-02T00:00:00.000001Z", status="completed", limit="1") == ["day-4"]
    assert ids(since="2026-03-02T00:00:00Z", workflow_id="other") == []


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"since": "yesterday"}, ["query.since", "'yesterday'", "ISO 8601", "2024-05-01T00:00:00Z"]),
        ({"until": "2026-13-01T00:00:00Z"}, ["query.until", "ISO 8601"]),
        ({"since": "2026-03-01T00:00:00 02:00"}, ["query.since", "%2B"]),  # an unencoded '+' read as a space
        ({"until": "9999-12-31T23:00:00-05:00"}, ["query.until", "outside the range"]),
        ({"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, ["until", "since", "after"]),
        ({"since": "2026-03-02T00:00:00Z", "until": "2026-03-02T02:00:00+02:00"}, ["until", "since", "after"]),
    ],
)
def test_bad_time_bounds_are_422s_that_name_them(served, params, words):
    answer = _page(served, **params)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "validation_error" and body["details"]["errors"], body
    for word in words:
        assert word in body["message"], (word, body["message"])


def test_node_states_carry_their_inputs(served):
    served.store()
    recorded = {"upstream": {"a": "completed"}, "config": {"url": "https://example.org"},
                "global_context_keys": ["customer"]}  # fmt: skip
    _executions(served.settings, ("with-inputs", "served", "completed", NOW))
    with get_db(served.settings) as session:
        session.add(NodeState(execution_id="with-inputs", node_id="a", status="completed", inputs={"upstream": {}}))
        session.add(NodeState(execution_id="with-inputs", node_id="b", status="completed", inputs=recorded,
                              outputs={"ok": True}))  # fmt: skip
        session.add(NodeState(execution_id="with-inputs", node_id="c", status="pending"))
    answer = served.client("viewer").get("/api/executions/with-inputs")
    assert answer.status_code == 200, answer.text
    nodes = {n["node_id"]: n for n in answer.json()["node_states"]}
    assert nodes["a"]["inputs"] == {"upstream": {}}
    # shown as recorded, under the rule outputs follow (nothing is redacted: what a node records holds the
    # context's keys and upstream statuses, never their values, and its config is the stored definition's)
    assert nodes["b"]["inputs"] == recorded and nodes["b"]["outputs"] == {"ok": True}
    assert nodes["c"]["inputs"] is None
