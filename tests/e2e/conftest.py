"""End-to-end fixtures: a real ``dagster-webserver`` and ``dagster-daemon`` over a Maestro home, and helpers.

``stack`` (session-scoped, parametrised sqlite / postgresql) migrates a Maestro database, writes the e2e
workflow definitions into a temp ``MAESTRO_DEFS_DIR``, syncs them, prepares ``DAGSTER_HOME`` and starts both
processes (own session each, logs in files, stopped by pid at teardown); it waits until the webserver serves
the location ``maestro`` and the daemon has ticked ``maestro_mirror_sensor``. ``e2e`` (function-scoped)
points this test process at that stack. ``cli_home`` is the same home without any server (for ``maestro run``).
When a test fails, the tails of the stack's logs are printed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _e2e_home import Home, Stack, failed, pointed_at
from _e2e_procs import Cluster
from _procs import serving


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def stack(request, tmp_path_factory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp(f"e2e_{request.param}")
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_database_factory")()
    else:
        url = f"sqlite:///{work / 'maestro.db'}"
    stack = Stack(work, url)
    with serving(stack, stack.start_servers, pytest.MonkeyPatch()):
        yield stack


@pytest.fixture
def e2e(stack: Stack, monkeypatch, request) -> Iterator[Stack]:
    """The module's stack, with this test process pointed at it; logs printed if the test fails."""
    with pointed_at(stack, monkeypatch, request):
        yield stack


@pytest.fixture
def cli_home(tmp_path, monkeypatch, request) -> Iterator[Home]:
    """A migrated SQLite home with the e2e definitions and no server: for ``maestro run`` / ``mirror sync``."""
    home = Home(tmp_path / "cli", f"sqlite:///{tmp_path / 'cli' / 'maestro.db'}")
    home.apply(monkeypatch)
    home.setup()
    try:
        yield home
    finally:
        home.stop_all()
        if failed(request):
            print(home.log_tails())


@pytest.fixture
def pg_cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
