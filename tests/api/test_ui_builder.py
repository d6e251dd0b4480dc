"""The web UI's builder, execution detail and reports in a real browser (Debian's Chromium, headless, Playwright),
against the API served on SQLite and PostgreSQL with no Dagster behind it (``served``).

The builder: nodes added, changed and removed and edges connected (by dragging on the graph) and disconnected,
each reflected in the YAML at once, and YAML typed reflected in the graph; a server validation error on its node;
the fix saved. An execution: the timeline of node attempts across its two runs, artifacts downloaded only when the
API serves them. Reports: the charts drawn and their figures. A workflow's schedule with its state unknown when
Dagster cannot be asked, and Execute refusing a context that is not a JSON object before any call.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from _served import DEFINITION, TOKENS
from playwright.sync_api import Page, expect
from test_api_ui_support import _report_rows

from maestro_dagster.db.models import Artifact, ExecutionEvent, ExecutionRun, NodeState, WorkflowExecution
from maestro_dagster.db.session import get_db


@pytest.fixture
def page(pages, served):
    return pages.open(served.url)


def _sign_in(page: Page, role: str) -> None:
    page.goto("/ui/")
    page.get_by_label("API token").fill(TOKENS[role])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("who")).to_contain_text(f"({role})")


def _yaml(page: Page) -> str:
    return page.locator(".cm-content").inner_text()


def test_build_a_workflow_in_the_builder_see_its_error_on_the_node_fix_and_save(page, served):
    _sign_in(page, "admin")
    page.get_by_role("link", name="New workflow").click()
    builder = page.get_by_test_id("builder")
    expect(page.get_by_test_id("node-first")).to_be_visible()
    # the executors offered are the ones the server lets a definition posted through the API use
    options = builder.get_by_label("Executor").first.locator("option").all_inner_texts()
    assert options[:5] == ["default for the type", "noop", "http", "phase", "human_review"]
    assert options[5:] == (["an allowed import path…"] if served.settings.executor_allowlist else [])
    # add a node: in the YAML and on the graph at once
    builder.get_by_label("Node id").fill("third")
    builder.get_by_label("Executor").first.select_option("noop")
    builder.get_by_label("Config (JSON)").first.fill('{"note": "added"}')
    builder.get_by_role("button", name="Add node").click()
    expect(page.get_by_test_id("node-third")).to_be_visible()
    expect(page.locator(".cm-content")).to_contain_text("third:")
    assert "note: added" in _yaml(page)
    # connect second -> third by dragging from second's right handle to third's left handle
    page.get_by_test_id("node-second").locator(".react-flow__handle-right").hover()
    page.mouse.down()
    page.get_by_test_id("node-third").locator(".react-flow__handle-left").hover()
    page.mouse.up()
    expect(page.get_by_test_id("rf__edge-second->third")).to_have_count(1)
    expect(page.locator(".cm-content")).to_contain_text("target: third")
    # a condition the server refuses: its error on the node and on its line
    page.get_by_test_id("node-third").click()
    selected = page.get_by_test_id("selected-node")
    expect(selected).to_contain_text("Node third")
    selected.get_by_label("Condition", exact=True).fill("outputs[")
    selected.get_by_role("button", name="Apply").click()
    expect(page.locator(".cm-content")).to_contain_text("condition: outputs[")
    page.get_by_role("button", name="Validate").click()
    expect(page.get_by_test_id("node-third")).to_have_class(re.compile(r"\bhas-error\b"))
    expect(page.get_by_test_id("node-first")).not_to_have_class(re.compile(r"\bhas-error\b"))
    expect(page.get_by_test_id("problems")).to_contain_text("nodes.third.condition")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Not saved")
    # the fix: the condition cleared in the form
    page.get_by_test_id("node-third").click()
    selected.get_by_label("Condition", exact=True).fill("")
    selected.get_by_role("button", name="Apply").click()
    expect(page.locator(".cm-content")).not_to_contain_text("condition:")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Saved")
    stored = served.client("viewer").get("/api/workflows/my_workflow").json()
    assert sorted(stored["definition"]["nodes"]) == ["first", "second", "third"]
    third = stored["definition"]["nodes"]["third"]
    assert (third["executor"], third["config"], third["condition"]) == ("noop", {"note": "added"}, None)
    assert {"source": "second", "target": "third"} in [
        {"source": e["source"], "target": e["target"]} for e in stored["definition"]["edges"]
    ]
    # disconnect the selected edge, remove a node: both leave the YAML and the graph
    page.get_by_test_id("rf__edge-second->third").dispatch_event("click")
    page.get_by_test_id("selected-edge").get_by_role("button", name="Disconnect").click()
    expect(page.get_by_test_id("rf__edge-second->third")).to_have_count(0)
    expect(page.locator(".cm-content")).not_to_contain_text("target: third")
    page.get_by_test_id("node-third").click()
    page.get_by_role("button", name="Remove node third").click()
    expect(page.get_by_test_id("node-third")).to_have_count(0)
    expect(page.locator(".cm-content")).not_to_contain_text("third")
    # and the other way: YAML typed in the editor redraws the graph
    page.locator(".cm-line").filter(has_text=re.compile(r"^\s*executor: noop$")).first.click()
    page.keyboard.press("End")
    page.keyboard.press("Control+Shift+ArrowLeft")
    page.keyboard.type("phase")
    expect(page.get_by_test_id("node-first")).to_contain_text("phase")
    assert page.problems == []  # type: ignore[attr-defined]


def _two_run_execution(settings, artifacts_dir, outside) -> None:
    """``served`` (a -> b): a fails in run 1, then a and b complete in run 2 (a resume); two artifacts of a."""
    start = datetime.now(UTC) - timedelta(minutes=5)
    with get_db(settings) as session:
        session.add(WorkflowExecution(id="exec_timeline", workflow_id="served", workflow_version=1,
                                      status="completed", total_nodes=2, started_at=start))  # fmt: skip
        session.flush()
        session.add(ExecutionRun(run_id="run-one", execution_id="exec_timeline", status="failed"))
        session.add(ExecutionRun(run_id="run-two", execution_id="exec_timeline", status="completed", kind="resume",
                                 parent_run_id="run-one"))  # fmt: skip
        for node_id in ("a", "b"):
            session.add(NodeState(execution_id="exec_timeline", node_id=node_id, status="completed",
                                  attempt_count=2 if node_id == "a" else 1, node_type="custom",
                                  outputs={"result": node_id}))  # fmt: skip
        steps = [("node_started", "a", "run-one", 0), ("node_failed", "a", "run-one", 5),
                 ("node_started", "a", "run-two", 60), ("node_completed", "a", "run-two", 70),
                 ("node_started", "b", "run-two", 71), ("node_completed", "b", "run-two", 80)]  # fmt: skip
        for storage_id, (event, node_id, run_id, seconds) in enumerate(steps, start=1):
            session.add(ExecutionEvent(execution_id="exec_timeline", event_type=event, node_id=node_id,
                                       dagster_run_id=run_id, dagster_storage_id=storage_id,
                                       timestamp=start + timedelta(seconds=seconds)))  # fmt: skip
        report = artifacts_dir / "exec_timeline" / "report.txt"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text("the report of node a\n")
        session.add(Artifact(execution_id="exec_timeline", node_id="a", name="report.txt", file_path=str(report),
                             content_type="text/plain", size_bytes=report.stat().st_size))  # fmt: skip
        session.add(Artifact(execution_id="exec_timeline", node_id="a", name="secret.txt", file_path=str(outside)))


def test_an_execution_timeline_across_runs_and_artifact_downloads(page, served, tmp_path):
    served.store()
    outside = tmp_path / "outside.txt"
    outside.write_text("not for download\n")
    _two_run_execution(served.settings, served.settings.artifacts_dir, outside)
    _sign_in(page, "viewer")
    page.goto("/ui/executions/exec_timeline")
    expect(page.get_by_test_id("execution-status")).to_have_text("completed")
    # a's two attempts, one per run, with their outcomes; b's one
    a_attempts = page.get_by_test_id("attempt-a")
    expect(a_attempts).to_have_count(2)
    assert [a_attempts.nth(i).get_attribute("data-outcome") for i in range(2)] == ["failed", "completed"]
    assert [a_attempts.nth(i).get_attribute("data-run") for i in range(2)] == ["run-one", "run-two"]
    expect(a_attempts.nth(1)).to_contain_text("run 2")
    expect(page.get_by_test_id("attempt-b")).to_have_count(1)
    page.get_by_test_id("node-a").click()
    detail = page.get_by_test_id("node-detail")
    expect(detail.get_by_test_id("node-outputs")).to_contain_text('"result": "a"')
    artifacts = detail.get_by_test_id("artifacts")
    expect(artifacts).to_contain_text("secret.txt")
    expect(artifacts.locator("li", has_text="secret.txt")).to_contain_text("not downloadable")
    with page.expect_download() as download:
        artifacts.get_by_role("button", name="Download report.txt").click()
    saved = tmp_path / "downloaded.txt"
    download.value.save_as(saved)
    assert saved.read_text() == "the report of node a\n"
    assert download.value.suggested_filename == "report.txt"
    assert page.problems == []  # type: ignore[attr-defined]


def test_reports_page_draws_its_charts_and_figures(page, served):
    served.store()
    served.store({"id": "other", "nodes": {"a": {"executor": "noop"}, "b": {"executor": "noop"}}, "edges": []})
    _report_rows(served.settings)
    _sign_in(page, "viewer")
    page.get_by_role("link", name="Reports").click()
    for chart in ("chart-success", "chart-p95", "chart-failing"):
        expect(page.get_by_test_id(chart).locator("canvas")).to_have_count(1)
    days = page.get_by_test_id("report-days").locator("tbody tr")
    expect(days).to_have_count(3)
    expect(days.first).to_contain_text("66.7%")  # three days ago: 2 of 3 completed
    failing = page.get_by_test_id("report-failing").locator("tbody tr")
    expect(failing.first).to_contain_text("served")
    expect(failing.first).to_contain_text("2")
    page.get_by_label("Workflow").fill("other")
    expect(days).to_have_count(2)
    assert page.problems == []  # type: ignore[attr-defined]


def test_schedules_shown_with_unknown_state_and_execute_checks_its_context(page, served):
    served.store({**DEFINITION, "schedules": [{"name": "nightly", "cron": "0 2 * * *"}]})
    _sign_in(page, "operator")
    page.goto("/ui/workflows/served")
    triggers = page.get_by_test_id("triggers")
    expect(triggers).to_contain_text("nightly")
    expect(page.get_by_test_id("trigger-state-nightly")).to_have_text("unknown")  # Dagster cannot be asked here
    page.get_by_role("button", name="Execute").click()
    form = page.get_by_test_id("execute-form")
    form.get_by_label("Initial context (JSON)").fill("[1, 2]")
    form.get_by_role("button", name="Start execution").click()
    expect(form.get_by_test_id("notice")).to_contain_text("a JSON object")
    form.get_by_label("Initial context (JSON)").fill('{"requirement": "x"}')
    form.get_by_role("button", name="Start execution").click()
    expect(form.get_by_test_id("notice")).to_contain_text("Not started")  # no Dagster behind this server
    assert page.url.endswith("/ui/workflows/served")
    assert page.problems == []  # type: ignore[attr-defined]


def test_workflows_list_shows_last_execution_and_success_rate_and_executions_filter_by_time(page, served):
    served.store()
    served.store({**DEFINITION, "id": "idle"})
    now = datetime.now(UTC)
    with get_db(served.settings) as session:
        for number, (status, days_ago) in enumerate([("completed", 20), ("completed", 10), ("failed", 1)]):
            created = now - timedelta(days=days_ago)
            session.add(WorkflowExecution(id=f"exec_list_{number}", workflow_id="served", workflow_version=1,
                                          status=status, total_nodes=2, created_at=created))  # fmt: skip
    _sign_in(page, "viewer")
    expect(page.get_by_test_id("last-served")).to_have_text("failed")
    expect(page.get_by_test_id("rate-served")).to_have_text("67%")  # 2 of 3 finished in 30 days
    expect(page.get_by_test_id("last-idle")).to_have_text("none")
    page.get_by_role("link", name="Executions").click()
    rows = page.get_by_test_id("execution-list").locator("tbody tr")
    expect(rows).to_have_count(3)
    five_days_ago = page.evaluate(
        "() => { const d = new Date(Date.now() - 5 * 86400e3); d.setMinutes(d.getMinutes() - d.getTimezoneOffset());"
        " return d.toISOString().slice(0, 16); }"
    )  # the datetime-local value of 5 days ago, in the browser's time zone
    page.get_by_label("Created from").fill(five_days_ago)
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("exec_list_2")
    page.get_by_label("Created from").fill("")
    page.get_by_label("Created before").fill(five_days_ago)
    expect(rows).to_have_count(2)
    assert page.problems == []  # type: ignore[attr-defined]
