"""``maestro rollups build|check --from DAY [--to DAY]``: rebuild (and check) or only check the daily reporting
rollups of a range of UTC days, one Dagster run per day (``maestro_dagster.assets.rollups``), so the Dagster UI shows
their materializations and check results as for a backfill launched there. One line per day.

``build`` exits 1 when a day's run failed or its check found a difference; ``check`` when a day's rollups differ
from its raw rows (or were never built). Dagster and the database are imported in the commands' bodies.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import typer

from maestro_dagster.errors import ValidationError

if TYPE_CHECKING:
    from maestro_dagster.assets.rollups import DayRun

app = typer.Typer(help="Daily reporting rollups (Dagster assets): build or check days.", no_args_is_help=True)
_FROM = typer.Option(..., "--from", help="First UTC day, YYYY-MM-DD.")
_TO = typer.Option(None, "--to", help="Last UTC day, YYYY-MM-DD (included; default: the --from day).")


@app.command()
def build(from_: str = _FROM, to: str | None = _TO) -> None:
    """Rebuild each day's rollups (idempotent) and check them against the raw rows."""
    _run(from_, to, check_only=False)


@app.command()
def check(from_: str = _FROM, to: str | None = _TO) -> None:
    """Only compare each day's rollups with its raw rows (recorded in rollup_days); nothing is rebuilt."""
    _run(from_, to, check_only=True)


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{option} {value!r} is not a day: write it YYYY-MM-DD (UTC)") from None


def _run(from_: str, to: str | None, *, check_only: bool) -> None:
    from maestro_dagster.assets.rollups import days_between, run_day
    from maestro_dagster.db.migrate import require_current
    from maestro_dagster.instance import get_instance
    from maestro_dagster.settings import get_settings

    first = _day(from_, "--from")
    days = days_between(first, _day(to, "--to") if to is not None else first)
    settings = get_settings()
    require_current(settings)  # before Dagster's instance is opened (on PostgreSQL it retries a dead server)
    instance = get_instance(settings)
    bad = 0
    try:
        for day in days:
            result = run_day(instance, day, check_only=check_only)
            line, ok = _line(result, check_only=check_only)
            bad += not ok
            typer.secho(line, fg=None if ok else typer.colors.RED)
            for difference in sorted({d for found in result.differences.values() for d in found}):
                typer.echo(f"  {difference}")
    finally:
        instance.dispose()
    if bad:
        raise typer.Exit(1)


def _line(result: DayRun, *, check_only: bool) -> tuple[str, bool]:
    if result.error is not None:
        return f"{result.day}: failed (run {result.run_id}): {result.error}", False
    check = "check passed" if result.check_passed else f"check FAILED ({_count(result)} difference(s))"
    if check_only:
        return f"{result.day}: {check} (run {result.run_id})", result.check_passed
    meta = result.metadata
    built = "kept (pruned by retention)" if meta.get("kept") else "rebuilt"
    return (
        f"{result.day}: {built}, {meta.get('executions', 0)} execution(s), {meta.get('workflows', 0)} workflow(s), "
        f"{meta.get('nodes', 0)} node row(s); {check} (run {result.run_id})",
        result.check_passed,
    )


def _count(result: DayRun) -> int:
    return len({d for found in result.differences.values() for d in found})
