"""Alembic environment for Maestro's tables only.

Our own version table (``maestro_alembic_version``), in our own schema on PostgreSQL; autogenerate sees
only the tables of ``maestro_dagster.db.models`` so Dagster's tables in the same database are never touched.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from maestro_dagster.db.migrate import configure_context
from maestro_dagster.db.session import build_engine
from maestro_dagster.settings import get_settings


def run_migrations(connection: Connection) -> None:
    configure_context(context, connection)
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    if context.is_offline_mode():
        raise SystemExit("Offline (--sql) migrations are not supported: run against a database.")
    settings = get_settings()
    engine = build_engine(settings)
    try:
        with engine.connect() as conn:
            run_migrations(conn)
            conn.commit()
    finally:
        engine.dispose()


main()
