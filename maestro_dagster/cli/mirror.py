"""``maestro mirror sync|verify``: catch up and check the mirrored tables against Dagster's event log.

Both exit 1 when a run is left unmirrored (``sync``: it could not be mirrored; ``verify``: it is not), 0 otherwise.
The mirror and Dagster are imported in the commands' bodies, not when the app is defined.
"""

from __future__ import annotations

import time

import typer

app = typer.Typer(help="The mirror of Dagster runs into Maestro's tables.", no_args_is_help=True)
_HINTS = {
    "workflow definition not stored": " (store it again: `maestro defs sync`, then run `maestro mirror sync` again)",
}


@app.command()
def sync(
    run: list[str] = typer.Option(None, "--run", help="Only these Dagster run ids (repeatable)."),
    all_: bool = typer.Option(False, "--all", help="Every Maestro run not yet completely mirrored (default)."),
) -> None:
    """Mirror runs not yet mirrored; fail runs whose worker process died."""
    from maestro_dagster.db.migrate import require_current
    from maestro_dagster.instance import get_instance
    from maestro_dagster.mirror import sync_runs
    from maestro_dagster.settings import get_settings

    settings = get_settings()
    require_current(settings)  # before Dagster's instance is opened (on PostgreSQL it retries a dead server)
    instance = get_instance(settings)
    started = time.perf_counter()
    try:
        report = sync_runs(instance, run_ids=list(run) if run else None, settings=settings)
    finally:
        instance.dispose()
    elapsed = time.perf_counter() - started
    for run_id in report.failed_dead_runs:
        typer.echo(f"run {run_id}: worker process is gone; reported failed")
    typer.echo(f"{len(report.runs)} run(s), {report.events_read} event(s) read in {elapsed:.2f}s")
    for run_id, why in report.unmirrored:
        typer.secho(f"run {run_id}: not mirrored: {why}{_HINTS.get(why, '')}", err=True, fg=typer.colors.RED)
    if report.unmirrored:
        raise typer.Exit(1)


@app.command()
def verify(
    run: list[str] = typer.Option(None, "--run", help="Only the executions of these Dagster run ids."),
    all_: bool = typer.Option(False, "--all", help="Every execution (default)."),
) -> None:
    """Recompute from Dagster's event log and print every difference; exit 1 when there is any."""
    from sqlalchemy import select

    from maestro_dagster.db.migrate import require_current
    from maestro_dagster.db.models import ExecutionRun, WorkflowExecution
    from maestro_dagster.db.session import get_db
    from maestro_dagster.instance import get_instance
    from maestro_dagster.mirror.source import iter_maestro_runs
    from maestro_dagster.mirror.verify import executions_of_runs, verify_executions
    from maestro_dagster.settings import get_settings

    settings = get_settings()
    require_current(settings)
    instance = get_instance(settings)
    try:
        with get_db(settings) as session:
            if run:
                ids = executions_of_runs(session, run)
                known = set(session.scalars(select(ExecutionRun.run_id).where(ExecutionRun.run_id.in_(run))))
                missing = [r for r in run if r not in known]
            else:
                ids = list(session.scalars(select(WorkflowExecution.id).order_by(WorkflowExecution.id)))
                known = set(session.scalars(select(ExecutionRun.run_id)))
                missing = [r.run_id for r in iter_maestro_runs(instance) if r.run_id not in known]
            diffs = verify_executions(session, instance, ids)
    finally:
        instance.dispose()
    for run_id in missing:
        typer.echo(f"run {run_id}: not mirrored (no execution_runs row)")
    for d in diffs:
        typer.echo(str(d))
    total = len(diffs) + len(missing)
    typer.echo(f"{len(ids)} execution(s) checked, {total} difference(s)")
    if total:
        raise typer.Exit(1)
