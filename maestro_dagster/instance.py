"""The Dagster instance Maestro uses: ``DAGSTER_HOME`` under the project-local home, configured to match.

With the embedded SQLite default, ``$DAGSTER_HOME/dagster.yaml`` is the project's ``dagster.yaml``; when
Maestro's database is PostgreSQL it is ``dagster.postgres.yaml`` (Dagster's storage in the same database),
and ``MAESTRO_DAGSTER_POSTGRES_URL`` is exported for it. ``prepare_dagster_env`` makes the environment of
this process (and of every Dagster process it starts) agree with the Maestro settings.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import DagsterInstance

from maestro_dagster.settings import Settings, get_settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PG_URL_ENV = "MAESTRO_DAGSTER_POSTGRES_URL"


def instance_config_source(settings: Settings) -> Path:
    name = "dagster.postgres.yaml" if settings.backend == "postgresql" else "dagster.yaml"
    return PROJECT_ROOT / name


def prepare_dagster_env(settings: Settings | None = None) -> Path:
    """Create ``DAGSTER_HOME`` with the right ``dagster.yaml`` and export the variables; returns the home."""
    settings = settings or get_settings()
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    wanted = instance_config_source(settings).read_text()
    target = home / "dagster.yaml"
    if not target.exists() or target.read_text() != wanted:
        target.write_text(wanted)
    os.environ["DAGSTER_HOME"] = str(home)
    if settings.backend == "postgresql":
        os.environ[PG_URL_ENV] = settings.database_url.render_as_string(hide_password=False)
    return home


def get_instance(settings: Settings | None = None) -> DagsterInstance:
    """The Dagster instance for these settings (remember to ``dispose()`` it, or use it as a context)."""
    return DagsterInstance.from_config(str(prepare_dagster_env(settings)))
