"""The PostgreSQL engine for read-only sessions (the API's GET endpoints): its statements run in autocommit, an idle
connection is tested before use, and a read whose connection broke while in use is repeated once, not answered 503.
Connections are broken for real, by terminating their server processes (the test's own database only)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from maestro_dagster.api.app import create_app
from maestro_dagster.db import session as db_session
from maestro_dagster.db.session import dispose_engines, read_session_factory

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])


def _server_pid(session) -> int:
    return session.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _terminate_others(settings) -> int:
    """Terminate every other server process connected to the test's database; how many there were."""
    admin = create_engine(settings.database_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).all()
            )
    finally:
        admin.dispose()


def test_a_read_opens_no_transaction(db):
    admin = create_engine(db.database_url, isolation_level="AUTOCOMMIT")
    with read_session_factory(db)() as session, admin.connect() as conn:
        pid = _server_pid(session)
        session.execute(text("SELECT count(*) FROM workflow_executions")).scalar_one()
        state = conn.execute(text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).scalar_one()
    admin.dispose()
    assert state == "idle"  # not "idle in transaction": nothing to roll back when the connection is returned


def test_a_connection_that_died_while_idle_is_replaced_at_checkout(db, monkeypatch):
    monkeypatch.setattr(db_session, "READ_PING_AFTER_IDLE_SECONDS", 0.0)
    dispose_engines()
    sessions = read_session_factory(db)
    with sessions() as session:
        first = _server_pid(session)
    assert _terminate_others(db) >= 1
    with sessions() as session:
        second = _server_pid(session)  # the checkout's ping found the dead connection; no error reaches here
    assert second != first


GETS = [
    ("/api/executions/no_such_execution", 404),
    ("/api/executions?limit=5", 200),
    ("/api/executions/no_such_execution/events", 404),
    ("/api/executions/no_such_execution/artifacts", 404),
    ("/api/workflows", 200),
    ("/api/workflows/no_such_workflow", 404),
    ("/api/workflows/no_such_workflow/versions", 404),
]


@pytest.mark.parametrize(("path", "expected"), GETS)
def test_a_read_whose_connection_broke_in_use_is_repeated_on_a_new_one(db, path, expected):
    dispose_engines()  # the read engine pings only after 10 s idle: the broken connection is found by the read
    client = TestClient(create_app(db.model_copy(update={"api_open": True})))
    assert client.get(path).status_code == expected
    assert _terminate_others(db) >= 1
    answer = client.get(path)
    assert answer.status_code == expected, answer.text  # not 503: the read ran again on a new connection
    assert client.get(path).status_code == expected
