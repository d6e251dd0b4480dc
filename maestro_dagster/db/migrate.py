"""Running Maestro's Alembic migrations programmatically (``maestro db ...`` and tests).

Our tables have their own version table (``maestro_alembic_version``) and, on PostgreSQL, their own
schema; only our models' tables are compared by autogenerate, so Dagster's tables are never touched.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from maestro_dagster.db.models import MAESTRO_TABLES, Base
from maestro_dagster.db.session import get_engine
from maestro_dagster.errors import NotMigratedError
from maestro_dagster.settings import Settings, get_settings

VERSION_TABLE = "maestro_alembic_version"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "table":
        return name in MAESTRO_TABLES
    table = getattr(obj, "table", None)
    return table is None or table.name in MAESTRO_TABLES


def _schema_of(connection: Connection) -> str | None:
    if connection.dialect.name != "postgresql":
        return None
    return get_settings().db_schema


def prepare_connection(connection: Connection, schema: str | None) -> None:
    """On PostgreSQL: create our schema if needed and put it first on this connection's search_path."""
    if schema:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.execute(text(f'SET search_path TO "{schema}", public'))


def configure_context(context: Any, connection: Connection) -> None:
    """Called by migrations/env.py."""
    schema = context.config.attributes.get("schema", _schema_of(connection))
    prepare_connection(connection, schema)
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        version_table_schema=schema,
        include_object=_include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        user_module_prefix="maestro_dagster.db.types.",
    )


def alembic_config(settings: Settings | None = None, stdout: io.StringIO | None = None) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"), stdout=stdout or io.StringIO())
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if settings is not None:
        cfg.attributes["schema"] = settings.schema_name
    return cfg


def _run(settings: Settings, fn: Any, *args: Any) -> str:
    out = io.StringIO()
    cfg = alembic_config(settings, out)
    with get_engine(settings).connect() as conn:
        cfg.attributes["connection"] = conn
        fn(cfg, *args)
        conn.commit()
    return out.getvalue()


def upgrade(settings: Settings | None = None, revision: str = "head") -> str:
    return _run(settings or get_settings(), command.upgrade, revision)


def downgrade(settings: Settings | None = None, revision: str = "-1") -> str:
    return _run(settings or get_settings(), command.downgrade, revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(settings: Settings | None = None) -> str | None:
    settings = settings or get_settings()
    with get_engine(settings).connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE, "version_table_schema": settings.schema_name}
        )
        return ctx.get_current_revision()


def history() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return [f"{rev.revision}  {rev.doc}" for rev in script.walk_revisions()]


def pending_model_changes(settings: Settings | None = None) -> list[Any]:
    """Autogenerate's diff between the migrated database and the models (empty when in sync)."""
    settings = settings or get_settings()
    with get_engine(settings).connect() as conn:
        prepare_connection(conn, settings.schema_name)
        ctx = MigrationContext.configure(
            conn,
            opts={
                "include_object": _include_object,
                "compare_type": True,
                "version_table": VERSION_TABLE,
                "version_table_schema": settings.schema_name,
            },
        )
        diff = compare_metadata(ctx, Base.metadata)
        conn.rollback()
        return diff


def require_current(settings: Settings | None = None) -> str:
    """Raise NotMigratedError unless the database is at the head revision; returns the revision."""
    settings = settings or get_settings()
    current, head = current_revision(settings), head_revision()
    if current != head:
        raise NotMigratedError(
            f"The Maestro database {settings.masked_database_url} is at revision {current or 'none'}, "
            f"expected {head}. Run `maestro db upgrade`.",
            details={"current": current, "head": head},
        )
    return current or ""


def initialize_database(settings: Settings | None = None) -> None:
    """The original's entry point: bring the schema to the latest revision."""
    upgrade(settings)
