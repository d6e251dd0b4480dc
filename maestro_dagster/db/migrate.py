"""Running Maestro's Alembic migrations programmatically (``maestro db ...`` and tests), and what a downgrade would
lose before it runs (``downgrade_losses``).

Our tables have their own version table (``maestro_alembic_version``) and, on PostgreSQL, their own
schema; only our models' tables are compared by autogenerate, so Dagster's tables are never touched.
Only ``upgrade`` creates a SQLite database file. ``require_current`` is the check of every command that needs
the tables: the database reachable and at the head revision, else one clear error naming the fix.
"""

from __future__ import annotations

import io
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, column, create_engine, func, inspect, select, table, text
from sqlalchemy.exc import SQLAlchemyError

from maestro_dagster.db.failures import as_database_error, missing_file_error, sqlite_file_missing
from maestro_dagster.db.models import MAESTRO_TABLES, Base
from maestro_dagster.db.session import get_engine
from maestro_dagster.errors import MigrationError, NotMigratedError
from maestro_dagster.settings import Settings, get_settings

VERSION_TABLE = "maestro_alembic_version"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    if type_ == "table":
        return name in MAESTRO_TABLES
    table_ = getattr(obj, "table", None)
    return table_ is None or table_.name in MAESTRO_TABLES


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
    try:
        with get_engine(settings).connect() as conn:
            cfg.attributes["connection"] = conn
            fn(cfg, *args)
            conn.commit()
    except CommandError as exc:  # a revision that does not exist or is no target from here
        raise MigrationError(f"Alembic refused: {exc}. `maestro db history` lists the revisions.") from None
    return out.getvalue()


def upgrade(settings: Settings | None = None, revision: str = "head") -> str:
    """Apply migrations up to ``revision``; the one place a SQLite database file is created."""
    settings = settings or get_settings()
    missing = sqlite_file_missing(settings)
    if missing is not None:
        missing.parent.mkdir(parents=True, exist_ok=True)
        sqlite3.connect(missing).close()
    return _run(settings, command.upgrade, revision)


def downgrade(settings: Settings | None = None, revision: str = "-1") -> str:
    """Revert migrations down to ``revision``, dropping whatever they drop (``downgrade_losses`` tells what)."""
    return _run(settings or get_settings(), command.downgrade, revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(settings: Settings | None = None) -> str | None:
    """The database's revision (None: no tables; nothing is created for a SQLite file that does not exist)."""
    settings = settings or get_settings()
    if sqlite_file_missing(settings) is not None:
        return None
    try:
        with get_engine(settings).connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"version_table": VERSION_TABLE, "version_table_schema": settings.schema_name}
            )
            return ctx.get_current_revision()
    except SQLAlchemyError as exc:
        raise as_database_error(exc, settings) from None


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
    """Raise NotMigratedError unless the database is at the head revision (DatabaseError when it cannot be
    reached); returns the revision. Creates nothing."""
    settings = settings or get_settings()
    missing = sqlite_file_missing(settings)
    if missing is not None:
        raise missing_file_error(settings, missing)
    current, head = current_revision(settings), head_revision()
    if current != head:
        raise NotMigratedError(
            f"The Maestro database {settings.masked_database_url} is at revision {current or 'none (no tables)'}, "
            f"expected {head}. Run `maestro db upgrade`.",
            details={"current": current, "head": head, "reason": "not_migrated"},
        )
    return current or ""


def initialize_database(settings: Settings | None = None) -> None:
    """The original's entry point: bring the schema to the latest revision."""
    upgrade(settings)


# ---- what a downgrade would drop ------------------------------------------------------------------------


@dataclass(frozen=True)
class Loss:
    """A table (``column`` None) or a column a downgrade drops, and the rows (non-null values) it holds."""

    table: str
    column: str | None
    rows: int

    def __str__(self) -> str:
        if self.column is None:
            return f"table {self.table} ({self.rows} row{'s' if self.rows != 1 else ''})"
        return f"column {self.table}.{self.column} ({self.rows} value{'s' if self.rows != 1 else ''})"


def _shapes(conn: Connection, schema: str | None = None) -> dict[str, set[str]]:
    """Table -> column names of the database (our version table left out)."""
    insp = inspect(conn)
    names = [t for t in insp.get_table_names(schema=schema) if t != VERSION_TABLE]
    return {t: {c["name"] for c in insp.get_columns(t, schema=schema)} for t in names}


def _shapes_around(current: str, revision: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Tables and columns at ``current`` and after ``downgrade revision`` from there, as the migrations themselves
    make them: both are run on a scratch in-memory SQLite database (so relative targets like ``-1`` resolve as
    Alembic resolves them, and any migration, present or future, is covered)."""
    scratch = create_engine("sqlite://")
    try:
        with scratch.connect() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, current)
            before = _shapes(conn)
            command.downgrade(cfg, revision)
            return before, _shapes(conn)
    except CommandError as exc:
        raise MigrationError(f"Alembic refused: {exc}. `maestro db history` lists the revisions.") from None
    finally:
        scratch.dispose()


def downgrade_losses(settings: Settings, revision: str) -> list[Loss]:
    """The tables and columns ``downgrade(settings, revision)`` would drop that hold rows (values) now."""
    current = current_revision(settings)
    if current is None:
        return []
    before, after = _shapes_around(current, revision)
    schema = settings.schema_name
    losses: list[Loss] = []
    try:
        with get_engine(settings).connect() as conn:
            present = _shapes(conn, schema)
            for name in sorted(before):
                if name not in present:
                    continue
                target = table(name, schema=schema)
                if name not in after:
                    losses.append(Loss(name, None, conn.execute(select(func.count()).select_from(target)).scalar_one()))
                    continue
                for dropped in sorted((before[name] - after[name]) & present[name]):
                    values = table(name, column(dropped), schema=schema)
                    query = select(func.count()).select_from(values).where(values.c[dropped].is_not(None))
                    losses.append(Loss(name, dropped, conn.execute(query).scalar_one()))
            conn.rollback()
    except SQLAlchemyError as exc:
        raise as_database_error(exc, settings) from None
    return [loss for loss in losses if loss.rows]
