"""The ``maestro`` command line: one Typer app; every MaestroError becomes a message and its exit code here.

A database failure raised as a driver's exception (from Maestro's code or from Dagster's own storage) is turned into
its ``DatabaseError`` first (``db.failures``): one line naming the database and the fix, never a traceback. The
commands that need the tables check them before they open Dagster's instance (``needs_tables``).

Defining the app imports only Typer and the command modules, which import only Typer and the leaves ``errors`` and
``names`` at module level: each command imports what it needs (settings, SQLAlchemy, Alembic, Dagster, the web
stack) in its body, so ``maestro --help`` starts without them and ``maestro defs list`` / ``maestro db health``
without Dagster or FastAPI (``tests/cli/test_cli_start.py``; timings in ``bench/bench_cli.py``).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import typer

from maestro_dagster.cli import api as api_cmd
from maestro_dagster.cli import backfill as backfill_cmd
from maestro_dagster.cli import db as db_cmd
from maestro_dagster.cli import defs as defs_cmd
from maestro_dagster.cli import dev as dev_cmd
from maestro_dagster.cli import mirror as mirror_cmd
from maestro_dagster.cli import report as report_cmd
from maestro_dagster.cli import retention as retention_cmd
from maestro_dagster.cli import rollups as rollups_cmd
from maestro_dagster.cli import run as run_cmd
from maestro_dagster.cli import triggers as triggers_cmd
from maestro_dagster.cli import worker as worker_cmd
from maestro_dagster.errors import MaestroError

app = typer.Typer(
    name="maestro",
    help="Maestro DAG workflows orchestrated by Dagster, mirrored into SQL tables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def needs_tables(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` preceded by ``require_current``: the database reachable and migrated, else its clear error
    (before Dagster's instance is opened, which on PostgreSQL retries a dead server for seconds)."""

    @functools.wraps(command)
    def checked(*args: Any, **kwargs: Any) -> Any:
        from maestro_dagster.db.migrate import require_current
        from maestro_dagster.settings import get_settings

        require_current(get_settings())
        return command(*args, **kwargs)

    return checked


app.add_typer(db_cmd.app, name="db")
app.add_typer(defs_cmd.app, name="defs")
app.add_typer(mirror_cmd.app, name="mirror")
app.add_typer(report_cmd.app, name="report")
app.add_typer(retention_cmd.app, name="retention")
app.add_typer(rollups_cmd.app, name="rollups")
app.add_typer(triggers_cmd.app, name="triggers")
app.command("run")(needs_tables(run_cmd.run))
app.command("resume")(needs_tables(run_cmd.resume))
app.command("approve")(needs_tables(run_cmd.approve))
app.command("backfill")(needs_tables(backfill_cmd.backfill))
app.command("dev")(dev_cmd.dev)
app.command("api")(api_cmd.api)
app.command("worker")(needs_tables(worker_cmd.worker))


def main(argv: list[str] | None = None) -> None:
    """Console entry point. Click handles usage errors; a MaestroError (or a database failure, as its
    ``DatabaseError``) becomes its message and exit code; any other exception is a bug and keeps its traceback.

    As the process's entry point (``argv`` None: the ``maestro`` script, ``python -m maestro_dagster``) the process
    ends through ``exit_now`` once the command is done."""
    try:
        try:
            app(args=argv)
        except Exception as exc:
            from maestro_dagster.db.failures import database_error_of  # SQLAlchemy only on the way out of a failure

            error = exc if isinstance(exc, MaestroError) else database_error_of(exc)
            if error is None:
                raise
            typer.secho(f"error: {error.message}", fg=typer.colors.RED, err=True)
            sys.exit(error.exit_code)
    except SystemExit as done:
        if argv is None:
            exit_now(done.code)
        raise


def exit_now(code: int | str | None) -> None:
    """End the process with ``code`` without the interpreter's teardown (freeing every object of Dagster and the
    rest, 0.5-1 s after a command that imported them): Maestro's database engines closed, output flushed and every
    ``atexit`` handler run first (logging, multiprocessing's children), as a normal exit does. A process with a
    non-daemon thread still running exits normally instead (its thread is waited for)."""
    import atexit
    import contextlib
    import os
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    session = sys.modules.get("maestro_dagster.db.session")
    if session is not None:  # closed as teardown would: SQLite's last connection folds its WAL back into the file
        with contextlib.suppress(Exception):
            session.dispose_engines()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or a broken pipe: nothing more can be said on it
            stream.flush()
    os._exit(code or 0)
