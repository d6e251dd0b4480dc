"""``maestro db``: migrate, inspect and check Maestro's database.

Settings, SQLAlchemy and Alembic are imported in the commands' bodies (``maestro --help`` needs none of them).
"""

from __future__ import annotations

import typer

from maestro_dagster.errors import DataLossError

app = typer.Typer(help="Maestro's database: migrations and health.", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: head), and create Dagster's storage for this home once."""
    from maestro_dagster.db import migrate
    from maestro_dagster.db.session import ping
    from maestro_dagster.settings import get_settings

    settings = get_settings()
    ping(settings)
    migrate.upgrade(settings, revision)
    typer.echo(f"{settings.masked_database_url}: at revision {migrate.current_revision(settings)}")
    from maestro_dagster.instance import get_instance  # Dagster is imported only by the command that needs it

    get_instance(settings).dispose()
    typer.echo(f"Dagster storage ready in {settings.dagster_home}")


@app.command()
def downgrade(
    revision: str = typer.Argument("-1", help="Target revision ('base' removes every table)."),
    yes: bool = typer.Option(False, "--yes", help="Confirm: what it drops is deleted with its rows."),
) -> None:
    """Revert migrations down to REVISION (default: one step). Refuses without --yes when it would drop rows."""
    from maestro_dagster.db import migrate
    from maestro_dagster.db.session import ping
    from maestro_dagster.settings import get_settings

    settings = get_settings()
    ping(settings)
    losses = migrate.downgrade_losses(settings, revision)
    listed = ", ".join(str(loss) for loss in losses)
    if losses and not yes:
        raise DataLossError(
            f"Refusing to downgrade {settings.masked_database_url} to {revision}: it would drop {listed}. "
            "Back them up if you need them, then re-run with --yes to confirm.",
            details={"drops": [str(loss) for loss in losses]},
        )
    migrate.downgrade(settings, revision)
    if losses:
        typer.echo(f"dropped {listed}")
    typer.echo(f"{settings.masked_database_url}: at revision {migrate.current_revision(settings) or 'base'}")


@app.command()
def current() -> None:
    """Print the database's current revision."""
    from maestro_dagster.db import migrate
    from maestro_dagster.db.session import ping
    from maestro_dagster.settings import get_settings

    settings = get_settings()
    ping(settings)
    typer.echo(migrate.current_revision(settings) or "base (no tables)")


@app.command()
def history() -> None:
    """List the migrations, newest first."""
    from maestro_dagster.db import migrate

    for line in migrate.history():
        typer.echo(line)


@app.command()
def health() -> None:
    """Check the connection, the schema revision and that it can be written; exit 1 when unreachable, not migrated
    or read-only."""
    from maestro_dagster.db import migrate
    from maestro_dagster.db.failures import sqlite_file_missing
    from maestro_dagster.db.session import check_writable, ping
    from maestro_dagster.settings import get_settings

    settings = get_settings()
    typer.echo(f"backend:  {settings.backend}")
    typer.echo(f"url:      {settings.masked_database_url}")
    if settings.schema_name:
        typer.echo(f"schema:   {settings.schema_name}")
    ping(settings)
    missing = sqlite_file_missing(settings)
    typer.echo("connect:  ok" if missing is None else f"connect:  {missing} does not exist yet")
    current_rev, head = migrate.current_revision(settings), migrate.head_revision()
    typer.echo(f"revision: {current_rev or 'none'} (head {head})")
    if current_rev != head:
        migrate.require_current(settings)  # raises its NotMigratedError, naming the database and the fix
    check_writable(settings, migrate.VERSION_TABLE)  # a write in a transaction rolled back
    typer.echo("write:    ok")
    typer.echo("status:   healthy")


@app.command()
def reset(yes: bool = typer.Option(False, "--yes", help="Confirm: every Maestro row is deleted.")) -> None:
    """Drop and recreate Maestro's tables (development only). Refuses without --yes."""
    from maestro_dagster.db import migrate
    from maestro_dagster.db.session import ping
    from maestro_dagster.settings import get_settings

    settings = get_settings()
    if not yes:
        typer.secho(
            f"Refusing to reset {settings.masked_database_url}: this deletes every workflow, execution and event. "
            "Re-run with --yes to confirm.",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(1)
    ping(settings)
    if migrate.current_revision(settings) is not None:  # a SQLite file not created yet has nothing to drop
        migrate.downgrade(settings, "base")
    migrate.upgrade(settings, "head")
    typer.echo(f"{settings.masked_database_url}: reset to revision {migrate.current_revision(settings)}")
