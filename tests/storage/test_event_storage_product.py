"""The project's storage classes under the product.

``maestro_env`` (the project's dagster.yaml on SQLite, dagster.postgres.yaml on PostgreSQL) runs a workflow through
``maestro run``'s code path (a process per step) and ``mirror verify`` finds no difference; on PostgreSQL the event
log keeps one server connection for its events, also across a fork.
"""

from __future__ import annotations

import os

import _storage_jobs
from _defs import linear
from dagster_postgres.event_log import PostgresEventLogStorage
from sqlalchemy import text

from maestro_dagster.event_storage import MaestroSqliteEventLogStorage
from maestro_dagster.event_storage_pg import MaestroPostgresEventLogStorage


def test_a_mirrored_run_on_the_projects_storage_verifies_clean(maestro_env, backend):
    expected = MaestroPostgresEventLogStorage if backend == "postgresql" else MaestroSqliteEventLogStorage
    assert type(maestro_env.instance.event_log_storage) is expected
    maestro_env.add_definition(linear("chain4", 4))
    launched = maestro_env.run("chain4", in_process=False)  # the multiprocess executor: a writer per step
    assert launched.success
    assert maestro_env.verify(launched.execution_id) == []


def _backend_pid(storage: PostgresEventLogStorage) -> int:
    with storage.run_connection(None) as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_postgres_events_share_one_kept_connection_and_read_back_as_dagsters(pg_database_factory):
    url = pg_database_factory()
    ours = MaestroPostgresEventLogStorage(url)
    dagsters = PostgresEventLogStorage(url)
    try:
        first = _backend_pid(ours)
        for i in range(20):
            ours.store_event(_storage_jobs.log_entry("r1", f"m{i}"))
        assert _backend_pid(ours) == first  # Dagster's class would have opened 21 connections meanwhile
        assert _backend_pid(dagsters) != _backend_pid(dagsters)  # ... as it does: a new backend per call
        read = ours.get_records_for_run("r1").records
        assert [r.event_log_entry.user_message for r in read] == [f"m{i}" for i in range(20)]
        assert [(r.storage_id, r.event_log_entry) for r in dagsters.get_records_for_run("r1").records] == [
            (r.storage_id, r.event_log_entry) for r in read
        ]
    finally:
        ours.dispose()
        dagsters.dispose()


def test_postgres_a_forked_child_uses_its_own_connection(pg_database_factory):
    url = pg_database_factory()
    storage = MaestroPostgresEventLogStorage(url)
    try:
        parent = _backend_pid(storage)
        child = os.fork()
        if child == 0:  # pragma: no cover - the child's outcome is its exit status
            code = 1
            try:
                storage.store_event(_storage_jobs.log_entry("r2", "from the child"))
                code = 0 if _backend_pid(storage) != parent else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert _backend_pid(storage) == parent  # the parent's connection survived the child
        assert [r.event_log_entry.user_message for r in storage.get_records_for_run("r2").records] == ["from the child"]
    finally:
        storage.dispose()
