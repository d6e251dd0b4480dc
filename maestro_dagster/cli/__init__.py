"""The ``maestro`` command line: one Typer app; every MaestroError becomes a message and its exit code here."""

from __future__ import annotations

import sys

import typer

from maestro_dagster.cli import api as api_cmd
from maestro_dagster.cli import db as db_cmd
from maestro_dagster.cli import defs as defs_cmd
from maestro_dagster.cli import dev as dev_cmd
from maestro_dagster.cli import mirror as mirror_cmd
from maestro_dagster.cli import run as run_cmd
from maestro_dagster.cli import triggers as triggers_cmd
from maestro_dagster.errors import MaestroError

app = typer.Typer(
    name="maestro",
    help="Maestro DAG workflows orchestrated by Dagster, mirrored into SQL tables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db_cmd.app, name="db")
app.add_typer(defs_cmd.app, name="defs")
app.add_typer(mirror_cmd.app, name="mirror")
app.add_typer(triggers_cmd.app, name="triggers")
app.command("run")(run_cmd.run)
app.command("resume")(run_cmd.resume)
app.command("approve")(run_cmd.approve)
app.command("dev")(dev_cmd.dev)
app.command("api")(api_cmd.api)


def main(argv: list[str] | None = None) -> None:
    """Console entry point. Click handles usage errors; a MaestroError becomes its message and exit code."""
    try:
        app(args=argv)
    except MaestroError as exc:
        typer.secho(f"error: {exc.message}", fg=typer.colors.RED, err=True)
        sys.exit(exc.exit_code)
