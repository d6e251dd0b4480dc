"""The ASGI application object for uvicorn (``maestro_dagster.api.asgi:app``), built from the environment.

Everything loaded by now (Dagster, SQLAlchemy, FastAPI, the app) lives as long as the server process: it is
moved out of reach of the garbage collector (``gc.freeze``), whose full passes would otherwise walk all of it,
holding every request up meanwhile (tens of milliseconds each time).
"""

import gc

from maestro_dagster.api.app import create_app

app = create_app()
gc.collect()
gc.freeze()
