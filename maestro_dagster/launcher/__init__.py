"""Launching runs of Maestro jobs: ``MaestroRunLauncher`` (configured in ``dagster.yaml``) and its worker process."""

from maestro_dagster.launcher.launcher import MaestroRunLauncher

__all__ = ["MaestroRunLauncher"]
