"""``maestro api``: serve the REST/WebSocket API with uvicorn (uvicorn and the settings imported when it runs)."""

from __future__ import annotations

import typer


def api(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port."),
    workers: int = typer.Option(1, help="Worker processes."),
) -> None:
    """Serve the API (OpenAPI at /docs). Runs are launched through the Dagster webserver (MAESTRO_DAGSTER_URL)."""
    import uvicorn

    from maestro_dagster.db.migrate import require_current
    from maestro_dagster.settings import get_settings

    settings = get_settings()
    require_current(settings)
    if settings.api_open:
        typer.secho(
            "MAESTRO_API_OPEN=true: every caller is an anonymous admin (local development only).",
            fg=typer.colors.YELLOW,
            err=True,
        )
    elif not settings.api_tokens:
        typer.secho("No MAESTRO_API_TOKENS set: only tokens stored in the api_tokens table are accepted.", err=True)
    uvicorn.run("maestro_dagster.api.asgi:app", host=host, port=port, workers=workers, log_level="info")
