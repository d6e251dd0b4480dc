"""maestro-dagster: Maestro DAG workflows orchestrated by Dagster, mirrored into documented SQL tables."""

__version__ = "0.1.0"
