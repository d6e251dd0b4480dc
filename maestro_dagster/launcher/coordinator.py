"""``MaestroRunCoordinator``: Dagster's ``QueuedRunCoordinator`` that tags each Maestro run with its execution id.

Every submitted run passes here (Dagster UI and GraphQL launches, re-executions, ``dagster job launch``,
schedules, sensors, backfills, the Maestro API and CLI): before the run is queued, a run of a Maestro workflow
that has no ``maestro/execution_id`` tag gets the one its execution has in the mirrored tables
(``maestro_dagster.tags``), so the id can be searched and filtered in the Dagster UI from the moment the
run is queued. Everything else (queueing, limits, dequeue settings, cancel) is ``QueuedRunCoordinator``'s, with
the same configuration fields (``dagster.yaml``).
"""

from __future__ import annotations

from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext
from dagster._core.storage.dagster_run import DagsterRun

from maestro_dagster.tags import missing_execution_tag


class MaestroRunCoordinator(QueuedRunCoordinator):
    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        tags = missing_execution_tag(self._instance, run)
        if tags:
            self._instance.add_run_tags(run.run_id, tags)
            run = self._instance.get_run_by_id(run.run_id) or run.with_tags({**run.tags, **tags})
            context = SubmitRunContext(run, workspace=context.workspace)
        return super().submit_run(context)
