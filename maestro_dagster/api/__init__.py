"""The REST and WebSocket API (FastAPI) over the mirrored tables; runs are launched through Dagster."""
