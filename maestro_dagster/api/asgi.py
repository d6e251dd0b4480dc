"""The ASGI application object for uvicorn (``maestro_dagster.api.asgi:app``), built from the environment."""

from maestro_dagster.api.app import create_app

app = create_app()
