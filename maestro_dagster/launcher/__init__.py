"""Launching runs of Maestro jobs: ``MaestroRunCoordinator`` and ``MaestroRunLauncher`` (configured in
``dagster.yaml``), the run worker process and its freshness check. The tags they read and add are in
``maestro_dagster.tags``."""

from maestro_dagster.launcher.coordinator import MaestroRunCoordinator
from maestro_dagster.launcher.launcher import MaestroRunLauncher

__all__ = ["MaestroRunCoordinator", "MaestroRunLauncher"]
