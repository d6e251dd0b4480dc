"""``maestro backfill WF --from --to [--max-concurrent N]``: one execution per time window of a partitioned workflow.

By default the runs go through the Dagster webserver (``MAESTRO_DAGSTER_URL``: queued, started by the daemon, as
the API launches them), at most N unfinished at once; ``--local`` runs each window here, one after the other.
Dagster, the executions and the settings are imported in the command's body.
"""

from __future__ import annotations

import typer


def backfill(
    workflow_id: str = typer.Argument(..., help="A workflow with a partitioned schedule."),
    first: str = typer.Option(..., "--from", help="First window start, ISO date or datetime (e.g. 2026-11-01)."),
    last: str = typer.Option(..., "--to", help="Last window start, inclusive (a date includes its whole day)."),
    max_concurrent: int = typer.Option(1, "--max-concurrent", min=1, max=100, help="Runs in flight at most."),
    local: bool = typer.Option(False, "--local", help="Run each window in this process, one at a time."),
) -> None:
    """Launch one run per window of WORKFLOW_ID between --from and --to; print each window's execution."""
    from maestro_dagster.db.repositories import RepositoryFactory
    from maestro_dagster.db.session import get_db
    from maestro_dagster.executions.backfill import run_backfill, windows
    from maestro_dagster.executions.transport import Transport
    from maestro_dagster.instance import get_instance, prepare_dagster_env
    from maestro_dagster.settings import get_settings

    settings = get_settings()
    with get_db(settings) as session:
        spec = RepositoryFactory(session).execution.spec_of(workflow_id)
    keys = windows(spec, first, last)
    prepare_dagster_env(settings)
    instance = get_instance(settings)
    transport: Transport
    try:
        if local:
            from maestro_dagster.executions.transport import LocalTransport

            transport = LocalTransport(instance, settings, log_level="WARNING")
        else:
            from maestro_dagster.executions.gateway import DagsterGateway, GatewayTransport

            transport = GatewayTransport(DagsterGateway(settings.dagster_url), lambda: instance)
        launched = run_backfill(transport, spec, keys, max_concurrent=max_concurrent)
    finally:
        instance.dispose()
    for item in launched:
        typer.echo(f"{item.partition_key}  {item.execution_id}  run {item.run_id}")
    typer.echo(f"{len(launched)} window(s) of {workflow_id} launched")
