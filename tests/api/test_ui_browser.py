"""The web UI in a real browser: Debian's Chromium, headless, driven by Python Playwright, against the API served
on SQLite and PostgreSQL. Signing in keeps the token in the tab only, the workflows list and its search, a
workflow's DAG drawn and laid out, and a hostile name shown as text. Every failed test saves a screenshot (its path
is in the test's report); no page may break its Content-Security-Policy."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from _served import DEFINITION, TOKENS
from playwright.sync_api import Page, expect
from sqlalchemy import update

from maestro_dagster.db.models import ExecutionEvent, ExecutionRun, NodeState, WorkflowExecution
from maestro_dagster.db.session import get_db

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture
def page(pages, served):
    return pages.open(served.url)


def _sign_in(page: Page, role: str = "viewer") -> None:
    page.goto("/ui/")
    page.get_by_label("API token").fill(TOKENS[role])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("who")).to_contain_text(f"({role})")


def test_sign_in_list_search_and_a_workflow_graph(page, served):
    served.store()
    served.store({**DEFINITION, "id": "other", "name": "Other flow"})
    page.goto("/ui/")
    expect(page.get_by_label("API token")).to_be_visible()  # no token yet: the sign-in form
    page.get_by_label("API token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    _sign_in(page)
    assert TOKENS["viewer"] not in page.url
    stored = page.evaluate("() => [sessionStorage.getItem('maestro.token'), localStorage.length, document.cookie]")
    assert stored == [TOKENS["viewer"], 0, ""]  # the tab only: no localStorage, no cookie
    table = page.get_by_test_id("workflows")
    expect(table.get_by_role("link", name="served")).to_be_visible()
    expect(table.get_by_role("link", name="other")).to_be_visible()
    page.get_by_label("Search workflows").fill("other")
    expect(table.get_by_role("link", name="served")).to_have_count(0)
    page.get_by_label("Search workflows").fill("")
    table.get_by_role("link", name="served").click()
    expect(page.get_by_test_id("workflow-id")).to_have_text("served")
    a, b = page.get_by_test_id("node-a"), page.get_by_test_id("node-b")
    expect(a).to_be_visible()
    expect(b).to_be_visible()
    expect(a).to_contain_text("noop")
    box_a, box_b = a.bounding_box(), b.bounding_box()
    assert box_a and box_b and box_b["x"] > box_a["x"] + box_a["width"] / 2  # laid out left to right: a -> b
    expect(page.locator(".react-flow__edge")).to_have_count(1)
    page.reload()  # the token survives a reload of the tab
    expect(page.get_by_test_id("node-a")).to_be_visible()
    assert page.problems == []  # type: ignore[attr-defined]


def test_a_hostile_name_is_shown_as_text(page, served):
    served.store({**DEFINITION, "id": "hostile", "name": HOSTILE})
    _sign_in(page)
    expect(page.get_by_test_id("workflows").get_by_text(HOSTILE, exact=True)).to_be_visible()
    page.get_by_role("link", name="hostile").click()
    expect(page.get_by_role("heading", name=HOSTILE)).to_be_visible()
    assert page.locator("img").count() == 0
    assert page.problems == []  # type: ignore[attr-defined]  # no alert, no CSP violation, no page error


def test_signing_out_forgets_the_token(page):
    _sign_in(page)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('maestro.token')") is None


def _execution(settings, execution_id: str = "exec_served_live", status: str = "running") -> None:
    """An execution of ``served`` (a -> b) in the tables, as the mirror writes one (no Dagster here)."""
    with get_db(settings) as session:
        session.add(WorkflowExecution(id=execution_id, workflow_id="served", workflow_version=1, status=status,
                                      total_nodes=2, started_at=datetime.now(UTC)))  # fmt: skip
        session.flush()
        for node_id in ("a", "b"):
            session.add(NodeState(execution_id=execution_id, node_id=node_id, status="pending", node_type="custom"))
        session.add(ExecutionRun(run_id=f"{execution_id}-run", execution_id=execution_id, status=status))


def _mirror(settings, execution_id: str, storage_id: int, event: str, node_id: str | None, status: str) -> None:
    """One mirrored event and the state it leads to, committed together (as the mirror does)."""
    with get_db(settings) as session:
        session.add(ExecutionEvent(execution_id=execution_id, event_type=event, node_id=node_id,
                                   dagster_run_id=f"{execution_id}-run", dagster_storage_id=storage_id))  # fmt: skip
        if node_id is not None:
            session.execute(
                update(NodeState)
                .where(NodeState.execution_id == execution_id, NodeState.node_id == node_id)
                .values(status=status, attempt_count=1)
            )
        else:
            session.execute(update(WorkflowExecution).where(WorkflowExecution.id == execution_id).values(status=status))


def test_an_execution_follows_its_events_live_without_a_reload(page, served):
    served.store()
    _execution(served.settings)
    _sign_in(page, "operator")
    page.goto("/ui/executions/exec_served_live")
    a, b = page.get_by_test_id("node-a"), page.get_by_test_id("node-b")
    expect(a).to_have_attribute("data-status", "pending")
    page.evaluate("() => { window.__loaded = true; }")  # gone if the page reloads
    expect(page.get_by_role("button", name="Cancel")).to_be_visible()  # an operator may cancel a running one
    steps = [("node_started", "a", "running"), ("node_completed", "a", "completed"),
             ("node_started", "b", "running"), ("node_completed", "b", "completed")]  # fmt: skip
    for storage_id, (event, node_id, status) in enumerate(steps, start=1):
        _mirror(served.settings, "exec_served_live", storage_id, event, node_id, status)
        expect(page.get_by_test_id(f"node-{node_id}")).to_have_attribute("data-status", status)
    _mirror(served.settings, "exec_served_live", 5, "workflow_completed", None, "completed")
    expect(page.get_by_test_id("execution-status")).to_have_text("completed")
    expect(page.get_by_test_id("event-count")).to_have_text("5")  # every event shown once
    expect(b).to_have_attribute("data-status", "completed")
    assert page.evaluate("() => window.__loaded") is True
    a.click()
    expect(page.get_by_test_id("node-detail")).to_contain_text("attempt(s) 1")
    assert page.problems == []  # type: ignore[attr-defined]


def test_a_viewer_sees_no_mutating_button_and_a_forged_call_is_refused(page, served):
    served.store()
    _execution(served.settings, "exec_served_failed", status="failed")
    _sign_in(page, "viewer")
    page.goto("/ui/executions/exec_served_failed")
    expect(page.get_by_test_id("execution-status")).to_have_text("failed")
    labelled = [t for t in page.get_by_role("button").all_text_contents() if t.strip()]  # the graph's zoom icons aside
    assert labelled == ["Sign out"]
    # the forged call the page would not offer: the server refuses the viewer's token
    status = page.evaluate(
        """async (token) => (await fetch('/api/executions/exec_served_failed/resume',
            {method: 'POST', headers: {Authorization: 'Bearer ' + token}})).status""",
        TOKENS["viewer"],
    )
    assert status == 403


def _replace_value(page: Page, line: str, value: str, nth: int = 0) -> None:
    """Type ``value`` over the last word of the ``nth`` line reading ``line`` (its value), key by key."""
    found = page.locator(".cm-line").filter(has_text=re.compile(rf"^\s*{re.escape(line)}$"))
    (found.last if nth < 0 else found.nth(nth)).click()
    page.keyboard.press("End")
    page.keyboard.press("Control+Shift+ArrowLeft")
    page.keyboard.type(value)
    key = line.split(":")[0]
    expect(
        page.locator(".cm-line").filter(has_text=re.compile(rf"^\s*{re.escape(key)}: {re.escape(value)}$")).first
    ).to_be_visible()


def test_edit_yaml_see_the_error_on_its_line_and_node_fix_and_save(page, served):
    served.store()
    _sign_in(page, "admin")
    page.goto("/ui/workflows/served")
    page.get_by_role("link", name="Edit YAML").click()
    editor = page.locator(".cm-content")
    lines = editor.locator(".cm-line")
    expect(editor).to_contain_text("executor: noop")
    texts = [t.strip() for t in lines.all_inner_texts()]  # the lines from the top (the first screen)
    b = texts.index("b:", texts.index("nodes:"))
    line = b + 1 + next(i for i, t in enumerate(texts[b + 1 :], start=1) if t.startswith("executor:"))
    _replace_value(page, "executor: noop", "no_such_executor", nth=1)  # node b's
    page.get_by_role("button", name="Validate").click()
    problems = page.get_by_test_id("problems")
    expect(problems).to_contain_text(f"line {line}: nodes.b.executor")  # on the executor's line
    expect(page.get_by_test_id("node-b")).to_have_class(re.compile(r"\bhas-error\b"))
    expect(page.get_by_test_id("node-a")).not_to_have_class(re.compile(r"\bhas-error\b"))
    expect(page.locator(".cm-lint-marker-error")).to_have_count(1)
    page.get_by_role("button", name="Save").click()  # the server refuses the invalid definition too
    expect(page.get_by_test_id("notice")).to_contain_text("Not saved")
    _replace_value(page, "executor: no_such_executor", "noop")
    _replace_value(page, "description: null", "fixed", nth=-1)  # node b's (the last)
    page.get_by_role("button", name="Save").click()
    # stored; this server has no Dagster behind it to reload, and the page says so
    expect(page.get_by_test_id("notice")).to_contain_text("Saved; Dagster was not told yet")
    detail = served.client("viewer").get("/api/workflows/served").json()
    assert detail["version"] == 2 and detail["definition"]["nodes"]["b"]["description"] == "fixed"
    # a duplicate key, refused on its line before any server call (YAML would silently keep the last one)
    page.locator(".cm-line").first.click()  # into the editor (Save took the focus), then to its top
    page.keyboard.press("Control+Home")
    page.locator(".cm-line").filter(has_text=re.compile(r"^name: served$")).click()
    page.keyboard.press("Home")
    page.keyboard.press("Control+Shift+ArrowRight")  # the key `name`
    page.keyboard.type("id")
    expect(problems).to_contain_text("Map keys must be unique")
    expect(problems).to_contain_text("line 2")  # the second `id`, where `name` was
    assert page.problems == []  # type: ignore[attr-defined]


def test_diff_two_versions_and_restore_one(page, served):
    served.store()  # version 1: a -> b, both noop
    changed = {**DEFINITION, "nodes": {"a": {"executor": "noop"}, "b": {"executor": "echo"}}}
    served.store(changed)  # version 2: b echoes
    _sign_in(page, "admin")
    page.goto("/ui/workflows/served")
    diff = page.get_by_test_id("diff")
    expect(diff.locator("tr.diff-removed")).to_contain_text(["executor: noop"])
    expect(diff.locator("tr.diff-added")).to_contain_text(["executor: echo"])
    page.get_by_role("button", name="Restore version 1").click()
    expect(page.get_by_test_id("versions-notice")).to_contain_text("Version 1 restored")
    versions = served.client("viewer").get("/api/workflows/served/versions").json()
    by_number = {v["version"]: v for v in versions}
    assert sorted(by_number) == [1, 2, 3] and by_number[3]["content_hash"] == by_number[1]["content_hash"]
    expect(page.get_by_test_id("versions")).to_contain_text("version 3")
    assert page.problems == []  # type: ignore[attr-defined]


def test_a_viewer_can_compare_versions_but_not_restore(page, served):
    served.store()
    served.store({**DEFINITION, "name": "renamed"})
    _sign_in(page, "viewer")
    page.goto("/ui/workflows/served")
    expect(page.get_by_test_id("diff").locator("tr.diff-added")).to_contain_text(["name: renamed"])
    expect(page.get_by_role("button", name=re.compile("Restore"))).to_have_count(0)
    expect(page.get_by_role("link", name="Edit YAML")).to_have_count(0)
