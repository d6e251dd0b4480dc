"""``maestro worker``: run the steps of ``executor: celery`` runs (``maestro_dagster.distributed.worker``)."""

from __future__ import annotations

import typer


def worker(
    queue: list[str] = typer.Option(  # Typer's way of declaring a repeatable option
        ["dagster"], "--queue", "-q", help="A queue to serve (repeatable). Default: dagster, the default queue."
    ),
    concurrency: int = typer.Option(1, "--concurrency", "-c", min=1, help="Steps run at once (pool processes)."),
    name: str | None = typer.Option(None, help="Celery node name. Default: maestro-<queues>@<host>."),
) -> None:
    """Serve Celery queues: needs only MAESTRO_DATABASE_URL (PostgreSQL) and MAESTRO_CELERY_BROKER_URL. SIGTERM
    finishes the running steps, then exits; a killed worker's steps go back to the queue."""
    from maestro_dagster.settings import QUEUE_RE, get_settings

    for name_ in queue:
        if not QUEUE_RE.match(name_):
            raise typer.BadParameter(
                f"queue {name_!r}: use 1-64 letters, digits, '_', '.' or '-'", param_hint="--queue"
            )
    settings = get_settings()
    from maestro_dagster.distributed.worker import run_worker

    run_worker(settings, queue, concurrency, name)
