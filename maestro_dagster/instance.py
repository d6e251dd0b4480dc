"""The Dagster instance Maestro uses: ``DAGSTER_HOME`` under the project-local home, configured to match.

With the embedded SQLite default, ``$DAGSTER_HOME/dagster.yaml`` is the project's ``dagster.yaml``; when
Maestro's database is PostgreSQL it is ``dagster.postgres.yaml`` (Dagster's storage in the same database),
and ``MAESTRO_DAGSTER_POSTGRES_URL`` is exported for it. ``prepare_dagster_env`` makes the environment of
this process (and of every Dagster process it starts) agree with the Maestro settings.

Dagster creates its storage (tables and Alembic stamps) when an instance is first opened on a home; several
processes doing that at once on a fresh SQLite home leave ``runs.db`` with two ``alembic_version`` heads and
every later Dagster command on it fails. So the first opening of a home is done under an exclusive file lock
(``.maestro-storage.lock`` in ``DAGSTER_HOME``), storage is created then, and a marker file records it
(``.maestro-storage-ready``, with the Dagster version): later openings skip the lock. ``maestro db upgrade`` and
``maestro dev`` open it once, before any run or server can race to.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from maestro_dagster.settings import Settings, get_settings

if TYPE_CHECKING:  # Dagster is imported by the functions that open an instance: ``prepare_dagster_env`` needs none
    from dagster import DagsterInstance

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PG_URL_ENV = "MAESTRO_DAGSTER_POSTGRES_URL"
PG_CONNECT_TIMEOUT_SECONDS = 10
STORAGE_LOCK = ".maestro-storage.lock"
STORAGE_READY = ".maestro-storage-ready"


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
        url = settings.database_url
        if "connect_timeout" not in url.query:  # Dagster's connections give up on a hanging server, as ours do
            url = url.update_query_dict({"connect_timeout": str(PG_CONNECT_TIMEOUT_SECONDS)})
        os.environ[PG_URL_ENV] = url.render_as_string(hide_password=False)
    return home


@contextmanager
def _home_lock(home: Path) -> Iterator[None]:
    """An exclusive lock on ``home`` between the processes of this machine (released when the block ends)."""
    with (home / STORAGE_LOCK).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _create_storage(instance: DagsterInstance) -> None:
    """Make Dagster create every storage it creates lazily (the run storage is created when opened)."""
    from dagster import DagsterRunStatus, RunsFilter

    instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED]), limit=1)
    instance.event_log_storage.get_maximum_record_id()
    instance.all_instigator_state()


def get_instance(settings: Settings | None = None) -> DagsterInstance:
    """The Dagster instance for these settings (remember to ``dispose()`` it, or use it as a context).

    The first opening of a home creates Dagster's storage under the home's lock (see the module docstring)."""
    from dagster import DagsterInstance
    from dagster.version import __version__ as dagster_version

    home = prepare_dagster_env(settings)
    ready = home / STORAGE_READY
    if ready.exists() and ready.read_text() == dagster_version:
        return DagsterInstance.from_config(str(home))
    with _home_lock(home):
        instance = DagsterInstance.from_config(str(home))
        if not (ready.exists() and ready.read_text() == dagster_version):
            try:
                _create_storage(instance)
            except BaseException:
                instance.dispose()
                raise
            ready.write_text(dagster_version)
        return instance
