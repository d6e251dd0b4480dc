"""What the web UI reads beyond the original API, served in-process on SQLite and PostgreSQL (``served``, no
Dagster behind it): ``/api/me``'s Dagster UI address, a workflow's Dagster job and location, the executors a
definition may use, events with their run, the triggers of a workflow (Dagster unreachable) and the reports."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from _procs import wait_for
from _served import serve

from maestro_dagster.db.models import ExecutionEvent, NodeState, WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.policy import BUILTIN_EXECUTORS
from maestro_dagster.settings import get_settings

TRIGGERED = {
    "id": "triggered",
    "nodes": {"a": {"executor": "noop"}},
    "edges": [],
    "schedules": [{"cron": "0 2 * * *", "timezone": "Europe/Paris", "enabled": True, "name": "nightly"},
                  {"cron": "*/5 * * * *"}],
    "sensors": [{"type": "request_queue", "name": "queue"},
                {"type": "file", "directory": "inbox", "pattern": "*.csv"},
                {"type": "workflow_completed", "workflow_id": "served", "statuses": ["completed", "failed"]}],
}  # fmt: skip


def test_me_names_the_dagster_ui_and_a_workflow_its_job(served, monkeypatch):
    served.store()
    me = served.client("viewer").get("/api/me").json()
    assert me["dagster_ui_url"] == served.settings.dagster_url.rstrip("/")
    detail = served.client("viewer").get("/api/workflows/served").json()
    assert detail["dagster_job"] == "served" and detail["dagster_location"] == "maestro@maestro"
    served.store({**TRIGGERED, "id": "with-dash"})
    assert served.client("viewer").get("/api/workflows/with-dash").json()["dagster_job"].startswith("with_dash_")
    monkeypatch.setenv("MAESTRO_DAGSTER_UI_URL", "https://dagster.example.org/ui/")
    get_settings.cache_clear()
    with serve(get_settings()) as other:
        assert other.client("viewer").get("/api/me").json()["dagster_ui_url"] == "https://dagster.example.org/ui"


def test_executors_are_listed_for_admins_only(served, monkeypatch):
    answer = served.client("admin").get("/api/executors")
    assert answer.status_code == 200
    allowed = set(served.settings.api_allowed_builtins)
    assert answer.json() == {
        "builtin": [n for n in BUILTIN_EXECUTORS if n in allowed],
        "import_prefixes": list(served.settings.allowed_executor_prefixes),
    }
    assert "command" not in answer.json()["builtin"]  # off for definitions posted through the API
    for role in ("viewer", "operator"):
        refused = served.client(role).get("/api/executors")
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    monkeypatch.setenv("MAESTRO_EXECUTOR_ALLOWLIST", "acme.tasks, maestro_examples")
    monkeypatch.setenv("MAESTRO_API_BUILTIN_EXECUTORS", "http,noop")
    get_settings.cache_clear()
    with serve(get_settings()) as other:
        assert other.client("admin").get("/api/executors").json() == {
            "builtin": ["noop", "http"],
            "import_prefixes": ["acme.tasks", "maestro_examples"],
        }


def test_events_carry_their_dagster_run(served):
    served.store()
    with get_db(served.settings) as session:
        session.add(WorkflowExecution(id="exec_runs", workflow_id="served", workflow_version=1, status="completed",
                                      total_nodes=2))  # fmt: skip
        session.flush()
        for storage_id, run in enumerate(("run-1", "run-2", None), start=1):
            session.add(ExecutionEvent(execution_id="exec_runs", event_type="node_started", node_id="a",
                                       dagster_run_id=run, dagster_storage_id=storage_id))  # fmt: skip
    events = served.client("viewer").get("/api/executions/exec_runs/events").json()
    assert [e["run_id"] for e in events] == ["run-1", "run-2", None]


def test_triggers_with_dagster_unreachable_are_listed_with_unknown_states(served):
    served.store({"id": "served", "nodes": {"a": {"executor": "noop"}}, "edges": []})
    served.store(TRIGGERED)
    answer = served.client("viewer").get("/api/workflows/triggered/triggers")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["workflow_id"] == "triggered"
    assert "could not be reached" in body["state_error"] and "MAESTRO_DAGSTER_URL" in body["state_error"]
    assert "Traceback" not in answer.text and "graphql" not in answer.text.lower()
    assert body["triggers"] == [
        {"kind": "schedule", "name": "triggered__schedule_nightly", "label": "nightly",
         "detail": "0 2 * * * (Europe/Paris)", "default_enabled": True, "state": "unknown"},
        {"kind": "schedule", "name": "triggered__schedule_1", "label": "1",
         "detail": "*/5 * * * * (UTC)", "default_enabled": False, "state": "unknown"},
        {"kind": "sensor", "name": "triggered__sensor_queue", "label": "queue",
         "detail": "request_queue: execution requests for triggered", "default_enabled": False, "state": "unknown"},
        {"kind": "sensor", "name": "triggered__sensor_file_1", "label": "file_1",
         "detail": "file: '*.csv' in inbox", "default_enabled": False, "state": "unknown"},
        {"kind": "sensor", "name": "triggered__sensor_workflow_completed_2", "label": "workflow_completed_2",
         "detail": "workflow_completed: served reaching completed, failed", "default_enabled": False,
         "state": "unknown"},
    ]  # fmt: skip
    plain = served.client("viewer").get("/api/workflows/served/triggers").json()
    assert plain["triggers"] == [] and plain["state_error"] is None  # nothing to ask Dagster about
    assert served.client("viewer").get("/api/workflows/nope/triggers").status_code == 404
    assert served.client(None).get("/api/workflows/triggered/triggers").status_code == 401


# ---- reports ------------------------------------------------------------------------------------------------


def _day(days_ago: int) -> date:
    return (datetime.now(UTC) - timedelta(days=days_ago)).date()


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


# (execution id, workflow, days ago, status, duration seconds or None, failed nodes)
REPORT_ROWS = [
    ("r1", "served", 3, "completed", 10, []),
    ("r2", "served", 3, "failed", 20, ["a"]),
    ("r3", "served", 3, "completed", 30, []),
    ("r4", "served", 2, "failed", 5, ["a", "b"]),
    ("r5", "other", 2, "completed", 100, []),
    ("r6", "other", 2, "running", None, []),
    ("r7", "other", 1, "failed", 7, ["b"]),
    ("r8", "served", 40, "failed", 1, ["a"]),  # outside a 30-day window
]


def _report_rows(settings) -> None:
    with get_db(settings) as session:
        for execution_id, workflow_id, days_ago, status, duration, failed in REPORT_ROWS:
            created = _at(_day(days_ago), 10)
            session.add(WorkflowExecution(
                id=execution_id, workflow_id=workflow_id, workflow_version=1, status=status, total_nodes=2,
                created_at=created, started_at=created,
                completed_at=created + timedelta(seconds=duration) if duration is not None else None,
            ))  # fmt: skip
            session.flush()
            for node_id in ("a", "b"):
                node_status = "failed" if node_id in failed else ("completed" if status != "running" else "running")
                session.add(NodeState(execution_id=execution_id, node_id=node_id, status=node_status,
                                      attempt_count=1))  # fmt: skip


def test_daily_report(served):
    served.store()
    served.store({"id": "other", "nodes": {"a": {"executor": "noop"}, "b": {"executor": "noop"}}, "edges": []})
    _report_rows(served.settings)
    viewer = served.client("viewer")
    rows = viewer.get("/api/reports/daily", params={"days": 30}).json()
    postgresql = served.settings.backend == "postgresql"
    assert [r["day"] for r in rows] == [_day(3).isoformat(), _day(2).isoformat(), _day(1).isoformat()]
    assert [(r["executions"], r["completed"], r["failed"]) for r in rows] == [(3, 2, 1), (3, 1, 1), (1, 0, 1)]
    assert rows[0]["success_rate"] == 200 / 3 and rows[1]["success_rate"] == 50.0 and rows[2]["success_rate"] == 0.0
    if postgresql:  # exact, from the raw rows: completed executions only
        assert rows[0]["p95_duration_seconds"] == 29.0 and rows[1]["p95_duration_seconds"] == 100.0
        assert rows[2]["p95_duration_seconds"] is None  # no completed execution that day
    else:  # SQLite: from the duration buckets of rolled-up days, none here
        assert all(r["p95_duration_seconds"] is None for r in rows)
    served_only = viewer.get("/api/reports/daily", params={"workflow_id": "served", "days": 30}).json()
    assert [(r["executions"], r["failed"]) for r in served_only] == [(3, 1), (1, 1)]
    longer = viewer.get("/api/reports/daily", params={"workflow_id": "served", "days": 60}).json()
    assert longer[0]["day"] == _day(40).isoformat() and len(longer) == 3
    assert viewer.get("/api/reports/daily", params={"days": 0}).status_code == 422
    assert served.client(None).get("/api/reports/daily").status_code == 401


def test_daily_report_p95_of_a_rolled_up_day_on_sqlite(served):
    """A day whose rollups are built: SQLite's p95 is the upper bound of the duration bucket holding it."""
    from maestro_dagster.reporting.rollups import rebuild_day

    served.store()
    served.store({"id": "other", "nodes": {"a": {"executor": "noop"}, "b": {"executor": "noop"}}, "edges": []})
    _report_rows(served.settings)
    with get_db(served.settings) as session:
        rebuild_day(session, _day(3))
    rows = served.client("viewer").get("/api/reports/daily", params={"days": 30}).json()
    if served.settings.backend == "postgresql":
        assert rows[0]["p95_duration_seconds"] == 29.0  # exact while the raw rows are there
    else:
        assert rows[0]["p95_duration_seconds"] == 30.0  # durations 10 and 30: the bucket <= 30 s
        assert rows[1]["p95_duration_seconds"] is None  # not rolled up


def test_failing_nodes_report(served):
    served.store()
    served.store({"id": "other", "nodes": {"a": {"executor": "noop"}, "b": {"executor": "noop"}}, "edges": []})
    _report_rows(served.settings)
    viewer = served.client("viewer")
    rows = viewer.get("/api/reports/failing-nodes", params={"days": 30}).json()
    assert rows == [
        {"workflow_id": "served", "node_id": "a", "failures": 2, "runs": 4},
        {"workflow_id": "other", "node_id": "b", "failures": 1, "runs": 2},
        {"workflow_id": "served", "node_id": "b", "failures": 1, "runs": 4},
    ]
    one = viewer.get("/api/reports/failing-nodes", params={"workflow_id": "other", "limit": 1}).json()
    assert one == [{"workflow_id": "other", "node_id": "b", "failures": 1, "runs": 2}]
    assert viewer.get("/api/reports/failing-nodes", params={"limit": 0}).status_code == 422


# ---- trigger states from a real Dagster (the session's stack) ------------------------------------------------


@pytest.mark.e2e
@pytest.mark.postgres
def test_trigger_states_come_from_dagster(api) -> None:
    """A schedule-bearing workflow posted through the API: Dagster reports its default-running schedule as running
    and the other as stopped. The crons name 29 February at midnight, so no tick launches a run in the shared
    stack; the workflow is deleted at the end."""
    definition = {
        "id": "ui_triggers",
        "nodes": {"a": {"executor": "noop"}},
        "edges": [],
        "schedules": [{"cron": "0 0 29 2 *", "enabled": True, "name": "on"},
                      {"cron": "30 0 29 2 *", "name": "off"}],
    }  # fmt: skip
    with api.client("admin") as admin, api.client("viewer") as viewer:
        assert admin.post("/api/workflows", json=definition).status_code == 201, "posting the workflow"
        try:

            def answered() -> dict | None:
                body = viewer.get("/api/workflows/ui_triggers/triggers").json()
                return body if body["state_error"] is None else None

            body = wait_for(answered, 120, "Dagster to report the schedules' states")
            assert {t["name"]: t["state"] for t in body["triggers"]} == {
                "ui_triggers__schedule_on": "running",
                "ui_triggers__schedule_off": "stopped",
            }
        finally:
            assert admin.delete("/api/workflows/ui_triggers").status_code == 204
