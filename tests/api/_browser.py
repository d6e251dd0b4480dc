"""The browser side of the UI tests: Debian's Chromium driven by Python Playwright (headless, ``executable_path``:
Playwright's own browser download is not reachable), pages that record what must never happen, a screenshot of
every page of a failed test in its report, and the README's screenshots.

``launch()`` starts Chromium (the ``browser`` fixture of this folder's ``conftest.py`` holds one per module);
``Pages(browser, request, folder)`` opens pages on a base URL (``open``), each in its own context (its own
sessionStorage, so its own sign-in), with ``page.problems`` listing Content-Security-Policy violations, dialogs
(dismissed) and page errors; ``close()`` saves a screenshot of each page when the test failed and names it in the
test's report. ``screenshot(page, name)`` saves a 1280x800 viewport image only when ``MAESTRO_UI_SCREENSHOTS``
names a folder (``make screenshots`` sets it to docs/images); ``sign_in(page, token, role)`` signs in through the
form.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT_MS = 60_000  # two cores shared with everything else: generous bounds
VIEWPORT = {"width": 1280, "height": 800}  # the README's screenshots
SCREENSHOTS_ENV = "MAESTRO_UI_SCREENSHOTS"


@contextmanager
def launch() -> Iterator[Browser]:
    assert shutil.which("chromium"), "Chromium is not installed: `apt-get install -y chromium` (.ci/run does it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


class Pages:
    """The pages of one test; ``close()`` after the test (a fixture's teardown) saves them if it failed."""

    def __init__(self, browser: Browser, request: pytest.FixtureRequest, folder: Path) -> None:
        self.browser, self.request, self.folder = browser, request, folder
        self.opened: list[tuple[BrowserContext, Page]] = []

    def open(self, base_url: str, *, timeout_ms: float = TIMEOUT_MS, viewport: dict[str, int] | None = None) -> Page:
        context = self.browser.new_context(base_url=base_url, **({"viewport": viewport} if viewport else {}))
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if "Content Security Policy" in m.text else None)
        page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.problems = problems  # type: ignore[attr-defined]
        self.opened.append((context, page))
        return page

    def close(self) -> None:
        report = getattr(self.request.node, "rep_call", None)
        failed = report is not None and report.failed
        for number, (context, page) in enumerate(self.opened, start=1):
            if failed:
                suffix = "" if len(self.opened) == 1 else f"-{number}"
                shot = self.folder / f"{self.request.node.name}{suffix}.png"
                try:
                    page.screenshot(path=str(shot), full_page=True)
                    report.sections.append(("screenshot", str(shot)))
                except Exception as exc:  # a crashed page: say so rather than hide the test's own failure
                    report.sections.append(("screenshot", f"none: {exc}"))
            context.close()
        self.opened.clear()


def screenshot(page: Page, name: str) -> Path | None:
    """``<MAESTRO_UI_SCREENSHOTS>/<name>.png``, the 1280x800 viewport, when that variable names a folder."""
    folder = os.environ.get(SCREENSHOTS_ENV)
    if not folder:
        return None
    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    if page.viewport_size != VIEWPORT:
        page.set_viewport_size(VIEWPORT)
    page.screenshot(path=str(path))
    return path


def sign_in(page: Page, token: str, role: str) -> None:
    """Through the sign-in form at /ui/, as a user does; done once the header names the role."""
    page.goto("/ui/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("who")).to_contain_text(f"({role})")
