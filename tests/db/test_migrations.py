"""Migrations: up/down/up with rows present, autogenerate finds nothing, Dagster's tables are never touched."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, inspect, text

from maestro_dagster.db import RepositoryFactory, get_db, migrate
from maestro_dagster.db.models import MAESTRO_TABLES
from maestro_dagster.db.repositories import DefinitionRecord


def _record(workflow_id: str = "wf") -> DefinitionRecord:
    nodes = {"a": {"name": "a"}, "b": {"name": "b"}}
    return DefinitionRecord(
        id=workflow_id,
        name=workflow_id,
        nodes=nodes,
        edges=[{"source": "a", "target": "b"}],
        definition={"id": workflow_id, "nodes": nodes, "edges": [{"source": "a", "target": "b"}]},
        content_hash="h1",
    )


def _tables(settings) -> set[str]:
    from maestro_dagster.db.session import get_engine

    return set(inspect(get_engine(settings)).get_table_names(schema=settings.schema_name))


def test_upgrade_downgrade_upgrade_with_rows(empty_db):
    migrate.upgrade(empty_db)
    assert _tables(empty_db) >= MAESTRO_TABLES
    assert migrate.current_revision(empty_db) == migrate.head_revision()
    with get_db(empty_db) as session:
        repos = RepositoryFactory(session)
        repos.workflow.create(_record())
        repos.execution.create("wf", {"requirement": "x"})
    migrate.downgrade(empty_db, "base")
    assert not (MAESTRO_TABLES & _tables(empty_db))
    assert migrate.current_revision(empty_db) is None
    migrate.upgrade(empty_db)
    with get_db(empty_db) as session:
        assert RepositoryFactory(session).workflow.list() == []
        RepositoryFactory(session).workflow.create(_record("again"))


def test_autogenerate_finds_no_changes(fast_settings):
    """The session's database, migrated once to head by ``migrate.upgrade``, matches the models."""
    assert migrate.pending_model_changes(fast_settings) == []


def test_seed_indexes_exist(fast_settings):
    from maestro_dagster.db.session import get_engine

    insp = inspect(get_engine(fast_settings))
    names = {
        ix["name"]
        for table in ("workflow_executions", "node_states", "execution_events")
        for ix in insp.get_indexes(table, schema=fast_settings.schema_name)
    }
    assert {
        "idx_execution_workflow_status",
        "idx_node_state_execution_status",
        "idx_event_execution_timestamp",
    } <= names


def test_postgres_tables_live_in_their_schema_beside_dagster(pg_database_factory, monkeypatch, tmp_path):
    """A Dagster instance shares the database; our downgrade to base leaves its tables intact."""
    from dagster import DagsterInstance

    from maestro_dagster.db.session import dispose_engines
    from maestro_dagster.settings import get_settings

    url = pg_database_factory()
    monkeypatch.setenv("MAESTRO_DATABASE_URL", url)
    get_settings.cache_clear()
    dispose_engines()
    settings = get_settings()
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        f'storage:\n  postgres:\n    postgres_url: "{url}"\ntelemetry:\n  enabled: false\n'
    )
    instance = DagsterInstance.from_config(str(home))
    instance.get_runs()  # storage is created and migrated by Dagster

    migrate.upgrade(settings)
    engine = create_engine(url)
    insp = inspect(engine)
    dagster_tables = set(insp.get_table_names(schema="public"))
    assert {"runs", "event_logs", "alembic_version"} <= dagster_tables
    assert MAESTRO_TABLES | {"maestro_alembic_version"} == set(insp.get_table_names(schema="maestro"))
    assert not (MAESTRO_TABLES & dagster_tables)
    with engine.connect() as conn:
        dagster_rev = conn.execute(text("SELECT version_num FROM public.alembic_version")).scalar()

    assert migrate.pending_model_changes(settings) == []
    migrate.downgrade(settings, "base")
    insp = inspect(engine)
    assert set(insp.get_table_names(schema="public")) == dagster_tables
    assert not set(insp.get_table_names(schema="maestro")) - {"maestro_alembic_version"}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM public.alembic_version")).scalar() == dagster_rev
    instance.get_runs()  # Dagster still works
    instance.dispose()
    engine.dispose()


def test_alembic_ini_is_the_same_migrations(tmp_path):
    root = Path(migrate.PROJECT_ROOT)
    assert (root / "alembic.ini").is_file()
    assert migrate.head_revision() is not None
