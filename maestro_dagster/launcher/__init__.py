"""Launching runs of Maestro jobs: ``MaestroRunCoordinator`` and ``MaestroRunLauncher`` (configured in
``dagster.yaml``), the run worker process, its freshness check and the tags they add."""

from maestro_dagster.launcher.coordinator import MaestroRunCoordinator
from maestro_dagster.launcher.launcher import MaestroRunLauncher

__all__ = ["MaestroRunCoordinator", "MaestroRunLauncher"]
