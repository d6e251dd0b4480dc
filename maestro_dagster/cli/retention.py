"""``maestro retention apply --older-than 90d [--dry-run] [--strict]``: remove the raw rows (and Dagster runs) of
the UTC days before the horizon whose rollups are materialized and checked (``reporting.retention``).

Prints one line per day (what was, or in a dry run would be, removed; or why the day was refused and the fix) and a
total. Exit code 0 when everything eligible was removed, refused days included (they are listed, with a warning
line on stderr): a day not yet rolled up is the normal state of recent history, not a failure. ``--strict`` makes a
refused day exit 1 (for alerting); a day left incomplete (an execution resumed while it was pruned) always exits 1.
The settings, SQLAlchemy and Dagster are imported in the command's body, not when the app is defined.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from maestro_dagster.reporting.retention import DayOutcome

app = typer.Typer(help="Retention of the raw tables: days whose rollups are the record.", no_args_is_help=True)
_UNITS = {"d": "days", "w": "weeks", "h": "hours"}


def parse_age(raw: str) -> timedelta:
    """``90d``, ``12w``, ``36h`` (or a bare number of days) as a duration; a BadParameter names the forms."""
    text = raw.strip().lower()
    number, unit = (text[:-1], text[-1]) if text and text[-1] in _UNITS else (text, "d")
    if not number.isdigit() or int(number) < 1:
        raise typer.BadParameter(f"{raw!r} is not an age: write a positive whole number of days, weeks or hours (90d)")
    return timedelta(**{_UNITS[unit]: int(number)})


@app.command()
def apply(
    older_than: str = typer.Option(..., "--older-than", help="Age of the horizon: 90d, 12w or 36h."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be removed; change nothing."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when a day is refused (default: a warning)."),
) -> None:
    """Remove raw rows and Dagster runs of days before the horizon whose rollups are built and checked."""
    age = parse_age(older_than)
    from maestro_dagster.db.migrate import require_current
    from maestro_dagster.db.session import get_db
    from maestro_dagster.reporting.retention import apply_retention, day_line, total_line
    from maestro_dagster.settings import get_settings

    settings = get_settings()
    require_current(settings)  # before Dagster's instance is opened (on PostgreSQL it retries a dead server)

    def shown(outcome: DayOutcome) -> None:
        refused = outcome.refused is not None
        typer.secho(day_line(outcome, dry_run=dry_run), fg=typer.colors.YELLOW if refused else None)

    instance = None
    if not dry_run:
        from maestro_dagster.instance import get_instance

        instance = get_instance(settings)
    try:
        report = apply_retention(lambda: get_db(settings), instance, age, dry_run=dry_run, on_day=shown)
    finally:
        if instance is not None:
            instance.dispose()
    typer.echo(total_line(report))
    if report.refused:
        typer.secho(
            f"warning: {len(report.refused)} day(s) refused: their raw rows are kept until their rollups are built "
            "and checked (see the fix on each line)",
            err=True,
            fg=typer.colors.YELLOW,
        )
    if report.incomplete or (strict and report.refused):
        raise typer.Exit(1)
