"""API end-to-end fixtures: PostgreSQL, a real Dagster webserver + daemon, and two real ``maestro api`` processes.

``api_stack`` (session-scoped) creates a PostgreSQL database (Maestro's tables and Dagster's storage), runs
``maestro db upgrade`` and ``maestro defs sync`` on a temp ``MAESTRO_DEFS_DIR``, prepares ``DAGSTER_HOME``
(``prepare_dagster_env``), then starts ``dagster-webserver``, ``dagster-daemon`` and two API instances
(``python -m maestro_dagster api --port P``) on free ports, each in its own process group with its log in a
file; teardown stops them by pid. Instance B polls only every 60 s, so whatever it streams quickly was woken
by PostgreSQL ``LISTEN/NOTIFY``. ``api`` (function-scoped) points this test process at the same database.

``served`` (function-scoped, SQLite and PostgreSQL) is lighter: the app in a uvicorn thread of this process on a
fresh migrated database, with no Dagster behind it (``_served``).

``browser`` (module-scoped: Playwright's sync API holds an event loop that tests using asyncio must not meet) is
headless Chromium; ``pages`` (function-scoped) opens pages on a base URL and saves a screenshot of each when the
test fails (``_browser``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _api_stack import ApiStack
from _browser import Pages, launch
from _procs import free_port, serving
from _served import MAX_BODY, TOKENS_SETTING, Served, serve
from playwright.sync_api import Browser

from maestro_dagster.db.session import dispose_engines
from maestro_dagster.instance import PG_URL_ENV
from maestro_dagster.settings import Settings, get_settings


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)  # for fixtures that act on a failure (the UI's screenshots)
    if report.failed:
        stack = getattr(item, "funcargs", {}).get("api_stack")
        if isinstance(stack, ApiStack):
            report.sections.append(("server logs", stack.log_tails()))
    return report


@pytest.fixture(scope="session")
def api_stack(pg_database_factory, tmp_path_factory) -> Iterator[ApiStack]:
    stack = ApiStack(tmp_path_factory.mktemp("api"), pg_database_factory())
    with serving(stack, stack.start_all):
        yield stack


@pytest.fixture
def api(api_stack: ApiStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiStack]:
    """The session's stack, with this process's settings pointing at its database."""
    for name in ("MAESTRO_HOME", "MAESTRO_DATABASE_URL", "DAGSTER_HOME", PG_URL_ENV):
        monkeypatch.setenv(name, api_stack.env[name])
    get_settings.cache_clear()
    dispose_engines()
    yield api_stack
    dispose_engines()


@pytest.fixture
def settings(api: ApiStack) -> Settings:
    return get_settings()


@pytest.fixture
def served(db: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """The app served by uvicorn in this process on ``db``; its Dagster URL is a port nothing listens on."""
    monkeypatch.setenv("MAESTRO_API_TOKENS", TOKENS_SETTING)
    monkeypatch.setenv("MAESTRO_DAGSTER_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MAESTRO_API_MAX_BODY_BYTES", str(MAX_BODY))
    get_settings.cache_clear()
    with serve(get_settings()) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch() as chromium:
        yield chromium


@pytest.fixture
def pages(browser: Browser, request: pytest.FixtureRequest, tmp_path) -> Iterator[Pages]:
    """Pages for this test (``pages.open(base_url)``); a failed test gets a screenshot of each in its report."""
    opened = Pages(browser, request, tmp_path)
    yield opened
    opened.close()
