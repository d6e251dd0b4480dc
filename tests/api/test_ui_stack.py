"""The web UI on the real stack (PostgreSQL, dagster-webserver, dagster-daemon, ``maestro api``) in headless
Chromium: an operator executes a workflow from its page (the Execute form) and watches every node turn completed
without a reload, resumes a failed execution from its page, approves a human-review node, replays from a node; an
admin builds a new workflow in the builder, sees a server error on its node, fixes, saves and executes it; a viewer
sees none of those buttons and a forged resume is refused. With ``MAESTRO_UI_SCREENSHOTS`` set
(``make screenshots``) the tests also take the README's screenshots.

The failed and the waiting executions are launched through the API before the module's first test, so their
start-ups overlap; each test then waits for the state it acts on (the two cores are shared: generous bounds). The
viewer's test comes first, while those two still offer an operator Resume and Approve; the review's node times out
after 180 s, so its approval comes next.
"""

from __future__ import annotations

import re

import httpx
import pytest
from _api_stack import TOKENS, ApiStack
from _browser import VIEWPORT, Pages, screenshot, sign_in
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

WAIT = 120_000  # ms, for what waits on Dagster runs
MUTATING = re.compile(r"^\s*(Execute|Resume|Cancel|Pause|Approve|Reject|Replay)\b")


@pytest.fixture(scope="module")
def launched(api_stack: ApiStack) -> dict[str, str]:
    """name -> execution id: api_flaky (fails once, then resumable) and api_review (waits for a review)."""
    (api_stack.work / "flaky.count").unlink(missing_ok=True)  # its first attempt fails, whatever ran before
    return {name: api_stack.execute(name)["execution_id"] for name in ("api_flaky", "api_review")}


def _page(pages: Pages, api_stack: ApiStack, role: str) -> Page:
    page = pages.open(api_stack.url_a, timeout_ms=WAIT, viewport=VIEWPORT)
    sign_in(page, TOKENS[role], role)
    return page


def _open_execution(page: Page, execution_id: str, status: str) -> None:
    page.goto(f"/ui/executions/{execution_id}")
    expect(page.get_by_test_id("execution-status")).to_have_text(status, timeout=WAIT)


def _drawn(page: Page, *node_ids: str) -> None:
    """Until the graph shows these nodes inside the window (React Flow fits its view once it measured them)."""
    for node_id in node_ids:
        expect(page.get_by_test_id(f"node-{node_id}")).to_be_in_viewport()


def _no_mutating_button(page: Page) -> None:
    """Called once the page shows its content: none of the buttons a viewer's role may not use."""
    expect(page.get_by_role("button", name=MUTATING)).to_have_count(0)
    expect(page.get_by_test_id("execute-form")).to_have_count(0)


def test_a_viewer_sees_no_mutating_button_and_a_forged_resume_is_refused(
    pages: Pages, api_stack: ApiStack, launched: dict[str, str]
) -> None:
    page = _page(pages, api_stack, "viewer")
    page.goto("/ui/workflows/api_echo")
    expect(page.get_by_test_id("node-report")).to_be_visible()
    _no_mutating_button(page)
    flaky = launched["api_flaky"]
    _open_execution(page, flaky, "failed")  # where an operator would see Resume
    expect(page.get_by_test_id("node-prepare")).to_be_visible()
    _no_mutating_button(page)
    status = page.evaluate(
        """async ([id, token]) => (await fetch(`/api/executions/${id}/resume`,
            {method: 'POST', headers: {Authorization: 'Bearer ' + token}})).status""",
        [flaky, TOKENS["viewer"]],
    )
    assert status == 403
    review = launched["api_review"]
    page.goto(f"/ui/executions/{review}")  # waiting for its review, where an operator would see Approve and Cancel
    expect(page.get_by_test_id("node-review")).to_have_attribute("data-status", "running", timeout=WAIT)
    expect(page.get_by_test_id("execution-status")).to_have_text("running")
    _no_mutating_button(page)
    assert page.problems == []  # type: ignore[attr-defined]


def test_approve_a_human_review(pages: Pages, api_stack: ApiStack, launched: dict[str, str]) -> None:
    execution_id = launched["api_review"]
    page = _page(pages, api_stack, "operator")
    page.goto(f"/ui/executions/{execution_id}")
    approve = page.get_by_role("button", name="Approve review")
    expect(approve).to_be_visible(timeout=WAIT)
    expect(page.get_by_test_id("node-review")).to_have_attribute("data-status", "running")
    expect(page.get_by_role("button", name="Reject review")).to_be_visible()
    _drawn(page, "review", "publish")
    screenshot(page, "execution-live")
    approve.click()
    expect(page.get_by_test_id("notice")).to_contain_text("Approve:")
    expect(page.get_by_test_id("node-publish")).to_have_attribute("data-status", "completed", timeout=WAIT)
    expect(page.get_by_test_id("execution-status")).to_have_text("completed", timeout=WAIT)
    expect(page.get_by_role("button", name="Approve review")).to_have_count(0)
    review = next(n for n in api_stack.execution(execution_id)["node_states"] if n["node_id"] == "review")
    assert review["status"] == "completed"
    assert page.problems == []  # type: ignore[attr-defined]


def test_a_failed_execution_resumed_from_its_page(pages: Pages, api_stack: ApiStack, launched: dict[str, str]) -> None:
    execution_id = launched["api_flaky"]
    page = _page(pages, api_stack, "operator")
    _open_execution(page, execution_id, "failed")
    expect(page.get_by_test_id("node-flaky")).to_have_attribute("data-status", "failed")
    expect(page.get_by_test_id("node-finish")).to_have_attribute("data-status", "blocked")
    page.get_by_test_id("node-flaky").click()
    expect(page.get_by_test_id("node-detail")).to_contain_text("attempt 1 fails")
    _drawn(page, "prepare", "flaky", "finish")
    screenshot(page, "execution-failed")
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Resume:")
    for node_id in ("prepare", "flaky", "finish"):
        expect(page.get_by_test_id(f"node-{node_id}")).to_have_attribute("data-status", "completed", timeout=WAIT)
    expect(page.get_by_test_id("execution-status")).to_have_text("completed", timeout=WAIT)
    expect(page.get_by_test_id("runs").locator("li")).to_have_count(2, timeout=WAIT)
    expect(page.get_by_test_id("runs").locator("li").nth(1)).to_contain_text("resume")
    expect(page.get_by_role("button", name="Resume")).to_have_count(0)  # nothing left to resume
    assert [r["kind"] for r in api_stack.execution(execution_id)["runs"]] == ["initial", "resume"]
    assert page.problems == []  # type: ignore[attr-defined]


def test_execute_and_watch_every_node_complete(pages: Pages, api_stack: ApiStack) -> None:
    page = _page(pages, api_stack, "operator")
    expect(page.get_by_test_id("workflows").get_by_role("link", name="api_echo")).to_be_visible()
    screenshot(page, "workflows")
    page.get_by_test_id("workflows").get_by_role("link", name="api_echo").click()
    expect(page.get_by_test_id("workflow-id")).to_have_text("api_echo")
    nodes = ("extract", "transform", "report")
    for node_id in nodes:
        expect(page.get_by_test_id(f"node-{node_id}")).to_be_visible()
    _drawn(page, *nodes)
    screenshot(page, "workflow")
    page.evaluate("() => { window.__loaded = true; }")  # gone if a page loads from here on
    page.get_by_role("button", name="Execute").click()
    form = page.get_by_test_id("execute-form")
    form.get_by_label("Initial context (JSON)").fill('{"ticket": "UI-1"}')
    form.get_by_label("Requirement").fill("from the browser test")
    form.get_by_role("button", name="Start execution").click()
    expect(page).to_have_url(re.compile(r"/ui/executions/exec_api_echo_[^/]+$"))
    execution_id = page.url.rsplit("/", 1)[1]
    for node_id in nodes:
        expect(page.get_by_test_id(f"node-{node_id}")).to_have_attribute("data-status", "completed", timeout=WAIT)
    expect(page.get_by_test_id("execution-status")).to_have_text("completed", timeout=WAIT)
    assert page.evaluate("() => window.__loaded") is True  # followed live, never reloaded
    page.get_by_test_id("node-extract").click()
    detail = page.get_by_test_id("node-detail")
    expect(detail).to_contain_text("completed · attempt(s) 1")
    expect(detail).to_contain_text('"rows": 3')  # extract's output, with the context the form started it with
    expect(detail).to_contain_text('"ticket": "UI-1"')
    expect(detail).to_contain_text('"requirement": "from the browser test"')
    detail.scroll_into_view_if_needed()
    screenshot(page, "execution-completed")
    assert api_stack.execution(execution_id)["status"] == "completed"
    assert page.problems == []  # type: ignore[attr-defined]


def test_replay_from_a_node_from_the_page(pages: Pages, api_stack: ApiStack) -> None:
    """The completed api_echo execution of the test above: a viewer's node detail offers no Replay; an operator's
    Replay from transform re-runs transform and report in the same execution (a replay run), extract untouched."""
    executions = httpx.get(f"{api_stack.url_a}/api/executions", params={"workflow_id": "api_echo", "limit": 1},
                           headers={"Authorization": f"Bearer {TOKENS['viewer']}"}, timeout=30).json()  # fmt: skip
    execution_id = executions[0]["execution_id"]
    viewer = _page(pages, api_stack, "viewer")
    _open_execution(viewer, execution_id, "completed")
    viewer.get_by_test_id("node-transform").click()
    expect(viewer.get_by_test_id("node-detail")).to_contain_text("transform")
    _no_mutating_button(viewer)
    page = _page(pages, api_stack, "operator")
    _open_execution(page, execution_id, "completed")
    page.get_by_test_id("node-transform").click()
    page.get_by_role("button", name="Replay from transform").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Replay from transform")
    expect(page.get_by_test_id("runs")).to_contain_text("replay", timeout=WAIT)
    expect(page.get_by_test_id("execution-status")).to_have_text("completed", timeout=WAIT)
    expect(page.get_by_test_id("node-transform")).to_have_attribute("data-status", "completed", timeout=WAIT)
    after = {n["node_id"]: n["attempt_count"] for n in api_stack.execution(execution_id)["node_states"]}
    assert after == {"extract": 1, "transform": 2, "report": 2}
    expect(page.get_by_test_id("attempt-transform")).to_have_count(2)  # the timeline shows both runs' attempts
    assert page.problems == [] and viewer.problems == []  # type: ignore[attr-defined]


def test_builder_reports_and_dagster_links(pages: Pages, api_stack: ApiStack) -> None:
    """After the executions above: the builder on a stored workflow, the reports page drawn from them, and the
    links to the job and its runs in the Dagster UI, which the real webserver serves."""
    page = _page(pages, api_stack, "admin")
    page.goto("/ui/workflows/api_echo")
    job = page.get_by_test_id("dagster-job")
    href = job.get_attribute("href") or ""
    assert href.startswith(api_stack.dagster_url) and "/jobs/" in href
    assert httpx.get(href, timeout=30).status_code == 200  # the Dagster UI's page of that job
    page.get_by_role("link", name="Edit YAML / builder").click()
    expect(page.get_by_test_id("builder")).to_be_visible()
    _drawn(page, "extract", "transform", "report")
    page.get_by_test_id("node-transform").click()
    expect(page.get_by_test_id("selected-node")).to_contain_text("Node transform")
    screenshot(page, "builder")
    page.get_by_role("link", name="Reports").click()
    expect(page.get_by_test_id("chart-success").locator("canvas")).to_have_count(1)
    expect(page.get_by_test_id("report-days").locator("tbody tr")).not_to_have_count(0)
    screenshot(page, "reports")
    executions = httpx.get(f"{api_stack.url_a}/api/executions", params={"workflow_id": "api_echo", "limit": 1},
                           headers={"Authorization": f"Bearer {TOKENS['viewer']}"}, timeout=30).json()  # fmt: skip
    page.goto(f"/ui/executions/{executions[0]['execution_id']}")
    run_link = page.get_by_test_id("runs").get_by_role("link", name="Dagster run").first
    assert httpx.get(run_link.get_attribute("href") or "", timeout=30).status_code == 200
    assert page.problems == []  # type: ignore[attr-defined]


def test_build_save_and_execute_a_new_workflow(pages: Pages, api_stack: ApiStack) -> None:
    """A workflow built in the builder on the real stack: a node added and connected, a server error on its node,
    fixed, saved (Dagster told: the job reloaded), then executed from its page to completed."""
    page = _page(pages, api_stack, "admin")
    try:
        page.get_by_role("link", name="New workflow").click()
        builder = page.get_by_test_id("builder")
        expect(page.get_by_test_id("node-first")).to_be_visible()
        builder.get_by_label("Node id").fill("third")
        builder.get_by_label("Executor").first.select_option("noop")
        builder.get_by_role("button", name="Add node").click()
        expect(page.get_by_test_id("node-third")).to_be_visible()
        builder.get_by_label("Connect from").select_option("second")
        builder.get_by_label("Connect to").select_option("third")
        builder.get_by_role("button", name="Connect").click()
        expect(page.get_by_test_id("rf__edge-second->third")).to_have_count(1)
        page.get_by_test_id("node-third").click()
        selected = page.get_by_test_id("selected-node")
        selected.get_by_label("Condition", exact=True).fill("outputs[")
        selected.get_by_role("button", name="Apply").click()
        page.get_by_role("button", name="Validate").click()
        expect(page.get_by_test_id("node-third")).to_have_class(re.compile(r"\bhas-error\b"))
        page.get_by_test_id("node-third").click()
        selected.get_by_label("Condition", exact=True).fill("")
        selected.get_by_role("button", name="Apply").click()
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_test_id("notice")).to_have_text("Saved: my_workflow version 1.", timeout=WAIT)
        page.goto("/ui/workflows/my_workflow")
        page.get_by_role("button", name="Execute").click()
        page.get_by_test_id("execute-form").get_by_role("button", name="Start execution").click()
        expect(page).to_have_url(re.compile(r"/ui/executions/exec_my_workflow_[^/]+$"), timeout=WAIT)
        for node_id in ("first", "second", "third"):
            expect(page.get_by_test_id(f"node-{node_id}")).to_have_attribute("data-status", "completed", timeout=WAIT)
        expect(page.get_by_test_id("execution-status")).to_have_text("completed", timeout=WAIT)
        assert page.problems == []  # type: ignore[attr-defined]
    finally:
        with api_stack.client("admin") as admin:
            admin.delete("/api/workflows/my_workflow", params={"with_executions": "true"})
