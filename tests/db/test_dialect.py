"""``maestro_dagster.db.dialect`` on a real SQLite file and a real PostgreSQL database: the same calls, the same rows.

Each test gets a new, empty database of the parametrised backend (``empty_db``) and Maestro's own engine for it
(``build_engine``: SQLite's pragmas and BEGIN, PostgreSQL's pool), with one probe table: ``id`` the primary key,
``key`` a second unique column, as ``execution_events`` has its Dagster key beside its id.
"""

from __future__ import annotations

import select as select_module
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, event, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from maestro_dagster.db.dialect import for_update, insert_for, insert_ignore, is_postgresql, notify, upsert
from maestro_dagster.db.session import build_engine

metadata = MetaData()
probe = Table(
    "dialect_probe",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("key", String(20), nullable=False, unique=True),
    Column("value", String(20)),
    Column("n", Integer),
)
SEED = [{"id": 1, "key": "a", "value": "x", "n": 1}, {"id": 2, "key": "b", "value": "y", "n": 2}]


@pytest.fixture
def engine(empty_db) -> Iterator:
    engine = build_engine(empty_db)
    metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        session.execute(probe.insert(), SEED)
    yield engine
    engine.dispose()


def statements(engine) -> list[str]:
    """The SQL the engine sends from now on (BEGIN/COMMIT aside)."""
    sent: list[str] = []

    def record(_conn, _cursor, statement, _parameters, _context, executemany) -> None:
        if statement.strip().upper() not in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"):
            sent.append(f"executemany: {statement}" if executemany else statement)

    event.listen(engine, "before_cursor_execute", record)
    return sent


def rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(probe).order_by(probe.c.id))]


def test_is_postgresql_names_the_backend(engine, backend):
    with Session(engine) as session:
        if backend == "postgresql":
            assert is_postgresql(session) is True
            assert session.execute(text("SELECT version()")).scalar_one().startswith("PostgreSQL")
        else:
            assert is_postgresql(session) is False
            assert session.execute(text("SELECT sqlite_version()")).scalar_one().startswith("3.")


def test_insert_for_is_the_dialects_insert(engine, backend):
    expected = postgresql.Insert if backend == "postgresql" else sqlite.Insert
    with Session(engine) as session:
        assert isinstance(insert_for(session, probe), expected)


def test_upsert_without_update_does_nothing_on_any_conflict(engine, backend):
    sent = statements(engine)
    with Session(engine) as session, session.begin():
        upsert(
            session,
            probe,
            [
                {"id": 1, "key": "a", "value": "changed", "n": 10},  # the primary key is taken
                {"id": 3, "key": "b", "value": "changed", "n": 30},  # the other unique column is taken
                {"id": 4, "key": "c", "value": "w", "n": 40},  # new
            ],
        )
    assert rows(engine) == [(1, "a", "x", 1), (2, "b", "y", 2), (4, "c", "w", 40)]
    [insert] = [statement for statement in sent if "INSERT" in statement]  # three rows, one statement
    assert "ON CONFLICT DO NOTHING" in insert
    if backend == "postgresql":  # RETURNING: the rows go as one multi-row INSERT, not one round trip per row
        assert "RETURNING" in insert and "VALUES (%(id__0)s" in insert and "(%(id__2)s" in insert


def test_upsert_with_update_sets_those_columns_from_the_offered_row(engine):
    offered = [{"id": 1, "key": "a", "value": "new", "n": 99}, {"id": 5, "key": "d", "value": "v", "n": 50}]
    with Session(engine) as session, session.begin():
        upsert(session, probe, offered, ("value",))
    assert rows(engine) == [(1, "a", "new", 1), (2, "b", "y", 2), (5, "d", "v", 50)]  # n of row 1 kept
    with Session(engine) as session, session.begin():  # the cached statement, offered again: the same result
        upsert(session, probe, [{"id": 2, "key": "b", "value": "again", "n": 0}], ("value",))
    assert rows(engine)[1] == (2, "b", "again", 2)


def test_upsert_of_no_rows_sends_nothing(engine):
    with Session(engine) as session, session.begin():
        session.execute(text("SELECT 1"))
        sent = statements(engine)
        upsert(session, probe, [], ("value",))
        upsert(session, probe, [])
    assert sent == []
    assert rows(engine) == [(1, "a", "x", 1), (2, "b", "y", 2)]


def test_insert_ignore_inserts_once(engine):
    with Session(engine) as session, session.begin():
        assert insert_ignore(session, probe, {"id": 7, "key": "g", "value": "first", "n": 7}) is True
        assert insert_ignore(session, probe, {"id": 8, "key": "g", "value": "second", "n": 8}) is False
        assert insert_ignore(session, probe, {"id": 7, "key": "h", "value": "third", "n": 9}) is False
    assert rows(engine)[-1] == (7, "g", "first", 7) and len(rows(engine)) == 3


def test_insert_for_on_conflict_do_update_on_a_unique_key(engine):
    """As ``upsert_artifacts`` writes: the conflict target is a unique key, the new values are given."""
    with Session(engine) as session, session.begin():
        for key, value in (("a", "seen"), ("z", "fresh")):
            stmt = insert_for(session, probe).values(id=ord(key), key=key, value=value, n=0)
            session.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value}))
    assert rows(engine) == [(1, "a", "seen", 1), (2, "b", "y", 2), (ord("z"), "z", "fresh", 0)]


def test_for_update_locks_the_rows_on_postgresql_only(engine, backend):
    plain = select(probe.c.value).where(probe.c.id == 1)
    with Session(engine) as session:
        stmt = for_update(session, plain)
        if backend == "sqlite":
            assert stmt is plain  # one writer at a time: no row locks to take
            return
        assert stmt is not plain and " FOR UPDATE" in str(stmt.compile(dialect=engine.dialect))
        other = create_engine(engine.url)
        try:
            session.execute(plain).one()  # read without the lock: the other connection may take it
            _lock_nowait(other)
            session.rollback()
            assert session.execute(stmt).scalar_one() == "x"  # now locked until this transaction ends
            with pytest.raises(OperationalError, match="could not obtain lock"):
                _lock_nowait(other)
            session.rollback()
            _lock_nowait(other)
        finally:
            other.dispose()


def _lock_nowait(engine) -> None:
    with engine.connect() as conn:
        conn.execute(select(probe.c.id).where(probe.c.id == 1).with_for_update(nowait=True)).one()


def test_notify_on_postgresql_is_delivered_at_commit(engine, backend):
    if backend == "sqlite":
        with Session(engine) as session, session.begin():
            session.execute(text("SELECT 1"))
            sent = statements(engine)
            assert notify(session, "maestro_probe", ["e1", "e2"]) is False
        assert sent == []  # SQLite has no NOTIFY: nothing is sent
        return
    listener = create_engine(engine.url, isolation_level="AUTOCOMMIT")
    try:
        with listener.connect() as conn:
            conn.exec_driver_sql("LISTEN maestro_probe")
            dbapi = conn.connection.dbapi_connection
            with Session(engine) as session:
                assert notify(session, "maestro_probe", []) is False
                assert notify(session, "maestro_probe", ["e1", "e2"]) is True
                assert _received(dbapi, 0.3) == []  # queued: not delivered before the commit
                session.commit()
            assert _received(dbapi, 10, expected=2) == [("maestro_probe", "e1"), ("maestro_probe", "e2")]
            with Session(engine) as session:
                notify(session, "maestro_probe", ["rolled back"])
                session.rollback()
            assert _received(dbapi, 0.3) == []
    finally:
        listener.dispose()


def _received(dbapi, timeout: float, expected: int = 0) -> list[tuple[str, str]]:
    """The notifications that arrive within ``timeout`` (returning early once ``expected`` have)."""
    got: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0 and (not expected or len(got) < expected):
        select_module.select([dbapi], [], [], remaining)
        dbapi.poll()
        got += [(n.channel, n.payload) for n in dbapi.notifies]
        dbapi.notifies.clear()
    return got
