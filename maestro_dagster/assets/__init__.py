"""Maestro's own Dagster definitions beside the workflow jobs: the reporting rollups (``rollups``) and retention
(``retention``), gathered into one ``dagster.Definitions`` that the code location (``maestro_dagster.definitions``)
delegates its assets, asset checks, asset jobs and their schedules to.

``reporting_definitions()`` reads no workflow definition and no table: it only builds Dagster objects (its caller
keeps them: the code location once per load). A retention setting that cannot be used (``ConfigError``) leaves
retention's job and schedule out, logged, and never the rollups or the workflow jobs. ``RESERVED_JOB_NAMES`` are
the job names these definitions take (a workflow job of the same name is left out of the location). Importing this
package imports Dagster.
"""

from __future__ import annotations

import logging

from dagster import Definitions, in_process_executor
from dagster._core.definitions.assets.job.asset_job import IMPLICIT_ASSET_JOB_NAME

from maestro_dagster.assets import retention, rollups
from maestro_dagster.errors import MaestroError

__all__ = ["RESERVED_JOB_NAMES", "reporting_definitions", "rollups"]
log = logging.getLogger(__name__)
RESERVED_JOB_NAMES = frozenset({IMPLICIT_ASSET_JOB_NAME, rollups.JOB_NAME, rollups.CHECK_JOB_NAME, retention.JOB_NAME})


def reporting_definitions() -> Definitions:
    """The rollup assets, their checks, jobs and schedule, and retention's jobs and schedules."""
    try:
        retention_jobs, retention_schedules = retention.retention_definitions()
    except MaestroError as exc:
        log.error("retention's job and schedule are left out of the code location: %s", exc.message)
        retention_jobs, retention_schedules = [], []
    return Definitions(
        assets=rollups.ASSETS,
        asset_checks=rollups.ASSET_CHECKS,
        jobs=[*rollups.JOBS, *retention_jobs],
        schedules=[*rollups.SCHEDULES, *retention_schedules],
        executor=in_process_executor,  # the implicit asset job's too (the UI's "Materialize"): short steps
    )
