"""``maestro db``: migrate, inspect and check Maestro's database."""

from __future__ import annotations

import typer

from maestro_dagster.db import migrate
from maestro_dagster.db.session import ping
from maestro_dagster.errors import NotMigratedError
from maestro_dagster.settings import get_settings

app = typer.Typer(help="Maestro's database: migrations and health.", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    settings = get_settings()
    ping(settings)
    migrate.upgrade(settings, revision)
    typer.echo(f"{settings.masked_database_url}: at revision {migrate.current_revision(settings)}")


@app.command()
def downgrade(revision: str = typer.Argument("-1", help="Target revision ('base' removes every table).")) -> None:
    """Revert migrations down to REVISION (default: one step)."""
    settings = get_settings()
    ping(settings)
    migrate.downgrade(settings, revision)
    typer.echo(f"{settings.masked_database_url}: at revision {migrate.current_revision(settings) or 'base'}")


@app.command()
def current() -> None:
    """Print the database's current revision."""
    settings = get_settings()
    ping(settings)
    typer.echo(migrate.current_revision(settings) or "base (no tables)")


@app.command()
def history() -> None:
    """List the migrations, newest first."""
    for line in migrate.history():
        typer.echo(line)


@app.command()
def health() -> None:
    """Check the connection and the schema revision; exit 1 when unreachable or not migrated."""
    settings = get_settings()
    typer.echo(f"backend:  {settings.backend}")
    typer.echo(f"url:      {settings.masked_database_url}")
    if settings.schema_name:
        typer.echo(f"schema:   {settings.schema_name}")
    ping(settings)
    typer.echo("connect:  ok")
    current_rev, head = migrate.current_revision(settings), migrate.head_revision()
    typer.echo(f"revision: {current_rev or 'none'} (head {head})")
    if current_rev != head:
        raise NotMigratedError(f"The database is not at the latest revision {head}: run `maestro db upgrade`.")
    typer.echo("status:   healthy")


@app.command()
def reset(yes: bool = typer.Option(False, "--yes", help="Confirm: every Maestro row is deleted.")) -> None:
    """Drop and recreate Maestro's tables (development only). Refuses without --yes."""
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
    migrate.downgrade(settings, "base")
    migrate.upgrade(settings, "head")
    typer.echo(f"{settings.masked_database_url}: reset to revision {migrate.current_revision(settings)}")
