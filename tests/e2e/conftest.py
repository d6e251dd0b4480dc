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
from _e2e_home import Home, Stack
from _e2e_procs import Cluster

from maestro_dagster.db.session import dispose_engines
from maestro_dagster.settings import get_settings


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(getattr(request.node, f"rep_{w}", None) and getattr(request.node, f"rep_{w}").failed
               for w in ("setup", "call"))  # fmt: skip


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def stack(request, tmp_path_factory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp(f"e2e_{request.param}")
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_database_factory")()
    else:
        url = f"sqlite:///{work / 'maestro.db'}"
    stack = Stack(work, url)
    mp = pytest.MonkeyPatch()
    try:
        stack.apply(mp)
        stack.setup()
        try:
            stack.start_servers()
        except BaseException:
            print(stack.log_tails())
            raise
        yield stack
    finally:
        stack.stop_all()
        mp.undo()
        get_settings.cache_clear()
        dispose_engines()


@pytest.fixture
def e2e(stack: Stack, monkeypatch, request) -> Iterator[Stack]:
    """The module's stack, with this test process pointed at it; logs printed if the test fails."""
    stack.apply(monkeypatch)
    yield stack
    if _failed(request):
        print(stack.log_tails())


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
        if _failed(request):
            print(home.log_tails())


@pytest.fixture
def pg_cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
