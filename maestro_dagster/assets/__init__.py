"""Maestro's own Dagster definitions beside the workflow jobs: the reporting rollups (``rollups``) and retention
(``retention``), gathered into one ``dagster.Definitions`` that the code location (``maestro_dagster.definitions``)
delegates its assets, asset checks, asset jobs and their schedules to.

``reporting_definitions()`` reads no workflow definition and no table: it only builds Dagster objects (its caller
keeps them: the code location once per load). Importing this package imports Dagster.
"""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from maestro_dagster.assets import rollups
from maestro_dagster.assets.retention import retention_definitions

__all__ = ["reporting_definitions", "rollups"]


def reporting_definitions() -> Definitions:
    """The rollup assets, their checks, jobs and schedule, and retention's jobs and schedules."""
    retention_jobs, retention_schedules = retention_definitions()
    return Definitions(
        assets=rollups.ASSETS,
        asset_checks=rollups.ASSET_CHECKS,
        jobs=[*rollups.JOBS, *retention_jobs],
        schedules=[*rollups.SCHEDULES, *retention_schedules],
        executor=in_process_executor,  # the implicit asset job's too (the UI's "Materialize"): short steps
    )
