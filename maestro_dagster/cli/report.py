"""``maestro report summary|nodes|failures``: the report queries (``reporting.queries``) printed as a table, JSON
or CSV.

This module owns the presentation only: the window from ``--since`` / ``--until`` / ``--workflow``, and the three
formats (``table``: aligned columns with a total row and notes; ``json``: a list of objects; ``csv``: a header row
then one row per object). Notes (the window, days read from the rollups) go to stdout in the table format and to
stderr in the other two, so their output parses as it is. The queries and SQLAlchemy are imported in the commands'
bodies (``maestro report --help`` needs neither); Dagster never.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, fields
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import typer

app = typer.Typer(
    help="Reports over the reporting views, and over the daily rollups for days retention has pruned.",
    no_args_is_help=True,
)


#: A table column: the row's field, its header, how a value is shown.
Column = tuple[str, str, Callable[[Any], str]]


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


WORKFLOW = typer.Option(None, "--workflow", "-w", help="Only this workflow (its id).")
SINCE = typer.Option("7d", "--since", help="How far back: a number of days, hours or minutes (7d, 12h, 30m).")
UNTIL = typer.Option(
    None,
    "--until",
    help="End of the window (exclusive): an ISO date or date and time, UTC unless it says. Default: now.",
)
FORMAT = typer.Option(Format.table, "--format", "-f", help="table, json (a list of objects) or csv (with a header).")


@contextmanager
def _session() -> Iterator[Any]:
    from maestro_dagster.db.migrate import require_current
    from maestro_dagster.db.session import get_db
    from maestro_dagster.settings import get_settings

    settings = get_settings()
    require_current(settings)  # the views and rollup tables are there, else: run `maestro db upgrade`
    with get_db(settings) as session:
        yield session


def _window(since: str, until: str | None, workflow: str | None) -> Any:
    from maestro_dagster.reporting import queries

    end = queries.parse_until(until) if until is not None else None
    return queries.Window.since(since, until=end, workflow_id=workflow)


def _plain(value: Any) -> Any:
    """A value as JSON and CSV carry it: times in ISO 8601."""
    return value.isoformat() if isinstance(value, datetime | date) else value


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _notes(report: Any, what: str) -> list[str]:
    window = report.window
    scope = f"workflow {window.workflow_id}" if window.workflow_id else "every workflow"
    lines = [f"{what} {_when(window.start)} .. {_when(window.end)} UTC (end excluded), {scope}"]
    if report.pruned_days:
        days = report.pruned_days
        span = str(days[0]) if len(days) == 1 else f"{days[0]} .. {days[-1]}"
        lines.append(f"{len(days)} UTC day(s) whose raw rows retention removed ({span}): {_PRUNED[what]}")
    return lines


_PRUNED = {
    "executions created": "counted whole from the daily rollups; the p95 covers the other days' raw rows only",
    "node states of executions created": "counted whole from the daily rollups",
    "node failures": "their failures are no longer listed (the rollups keep counts, not messages)",
}


def _number(digits: int, suffix: str = "") -> Callable[[Any], str]:
    return lambda v: "-" if v is None else f"{v:.{digits}f}{suffix}"


def _text(width: int | None = None) -> Callable[[Any], str]:
    def shown(v: Any) -> str:
        s = "-" if v is None else (_when(v) if isinstance(v, datetime) else " ".join(str(v).split()))
        return s if width is None or len(s) <= width else s[: width - 3] + "..."

    return shown


def _emit(
    fmt: Format,
    row_type: type,
    rows: Sequence[Any],
    columns: list[Column],
    notes: list[str],
    *,
    left: int,
    extra: Sequence[Any] = (),
) -> None:
    """Print ``rows`` (``row_type`` dataclasses: CSV's header even when there are none) in ``fmt``. The table
    shows ``columns`` (field, header, formatter), the first ``left`` of them aligned left and the rest (numbers)
    right, then ``extra`` rows (the total) under a rule."""
    if fmt is Format.json:
        typer.echo(json.dumps([{k: _plain(v) for k, v in asdict(r).items()} for r in rows], indent=2))
    elif fmt is Format.csv:
        names = [field.name for field in fields(row_type)]
        writer = csv.DictWriter(sys.stdout, fieldnames=names, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _plain(v) for k, v in asdict(r).items()} for r in rows)
    else:
        for note in notes:
            typer.echo(note)
        body = [[show(getattr(r, field)) for field, _, show in columns] for r in [*rows, *extra]]
        headers = [header for _, header, _ in columns]
        widths = [max(len(cell) for cell in column) for column in zip(headers, *body, strict=True)]
        for i, line in enumerate([headers, *body]):
            cells = [c.ljust(w) if j < left else c.rjust(w) for j, (c, w) in enumerate(zip(line, widths, strict=True))]
            if i == len(rows) + 1 and extra:
                typer.echo("  ".join("-" * w for w in widths))
            typer.echo("  ".join(cells).rstrip())
        if not rows:
            typer.echo("(no rows)")
        return
    for note in notes:
        typer.echo(note, err=True)


@app.command()
def summary(workflow: str | None = WORKFLOW, since: str = SINCE, until: str | None = UNTIL, fmt: Format = FORMAT):
    """Executions per workflow: by status, success rate, durations.

    Success rate = completed / finished (completed, failed, cancelled) executions; average and p95 duration of the
    completed ones (p95 on PostgreSQL only: "-" on SQLite). With several workflows the table ends with a total."""
    from maestro_dagster.reporting import queries

    window = _window(since, until, workflow)
    with _session() as session:
        report = queries.summary(session, window)
    total = [report.total] if len(report.rows) > 1 else []
    columns: list[Column] = [
        ("workflow_id", "WORKFLOW", lambda v: "(total)" if v is None else v),
        ("executions", "EXECUTIONS", str),
        ("completed", "COMPLETED", str),
        ("failed", "FAILED", str),
        ("cancelled", "CANCELLED", str),
        ("unfinished", "UNFINISHED", str),
        ("success_rate", "SUCCESS", _number(1, "%")),
        ("avg_duration_seconds", "AVG S", _number(3)),
        ("p95_duration_seconds", "P95 S", _number(3)),
    ]
    _emit(fmt, queries.SummaryRow, report.rows, columns, _notes(report, "executions created"), left=1, extra=total)


@app.command()
def nodes(workflow: str | None = WORKFLOW, since: str = SINCE, until: str | None = UNTIL, fmt: Format = FORMAT):
    """Per workflow and node: node states, failure rate, retries, duration, quality.

    Failure rate = failed / (completed + failed) node states; average duration and quality score of the node
    states that have one."""
    from maestro_dagster.reporting import queries

    window = _window(since, until, workflow)
    with _session() as session:
        report = queries.nodes(session, window)
    columns: list[Column] = [
        ("workflow_id", "WORKFLOW", str),
        ("node_id", "NODE", str),
        ("node_states", "STATES", str),
        ("completed", "COMPLETED", str),
        ("failed", "FAILED", str),
        ("skipped", "SKIPPED", str),
        ("blocked", "BLOCKED", str),
        ("failure_rate", "FAILURE", _number(1, "%")),
        ("retries", "RETRIES", str),
        ("avg_duration_seconds", "AVG S", _number(3)),
        ("avg_quality_score", "QUALITY", _number(3)),
    ]
    _emit(fmt, queries.NodeRow, report.rows, columns, _notes(report, "node states of executions created"), left=2)


@app.command()
def failures(
    workflow: str | None = WORKFLOW,
    since: str = SINCE,
    until: str | None = UNTIL,
    fmt: Format = FORMAT,
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many failures, newest first."),
):
    """The latest failed node attempts in the window, newest first.

    Each with its node, attempt, error type and message and execution (from the raw rows: a day retention pruned
    has none left)."""
    from maestro_dagster.reporting import queries

    window = _window(since, until, workflow)
    with _session() as session:
        report = queries.failures(session, window, limit)
    columns: list[Column] = [
        ("failed_at", "FAILED AT (UTC)", _text()),
        ("workflow_id", "WORKFLOW", _text()),
        ("node_id", "NODE", _text()),
        ("attempt", "ATTEMPT", _text()),
        ("error_type", "ERROR", _text(30)),
        ("error_message", "MESSAGE", _text(60)),
        ("execution_id", "EXECUTION", _text()),
    ]
    _emit(fmt, queries.FailureRow, report.rows, columns, _notes(report, "node failures"), left=len(columns))
