"""``MaestroRunCoordinator``: Dagster's ``QueuedRunCoordinator`` that tags each Maestro run with its execution id.

Every submitted run passes here (Dagster UI and GraphQL launches, re-executions, ``dagster job launch``,
schedules, sensors, backfills, the Maestro API and CLI): before the run is queued, a run of a Maestro workflow
that has no ``maestro/execution_id`` tag gets the one its execution has in the mirrored tables
(``maestro_dagster.tags``), so the id can be searched and filtered in the Dagster UI from the moment the
run is queued. Everything else (queueing, limits, dequeue settings, cancel) is ``QueuedRunCoordinator``'s, with
the same configuration fields (``dagster.yaml``), plus a workflow's ``concurrency`` limit (``concurrency.py``):
its runs are queued past it (a tag concurrency limit added to the configured ones) or skipped (recorded cancelled).
"""

from __future__ import annotations

from dagster._core.run_coordinator import QueuedRunCoordinator, SubmitRunContext
from dagster._core.run_coordinator.queued_run_coordinator import RunQueueConfig
from dagster._core.storage.dagster_run import DagsterRun

from maestro_dagster.launcher.concurrency import queue_limits, submit_or_skip
from maestro_dagster.tags import missing_execution_tag


class MaestroRunCoordinator(QueuedRunCoordinator):
    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        run = context.dagster_run
        tags = missing_execution_tag(self._instance, run)
        if tags:
            self._instance.add_run_tags(run.run_id, tags)
            run = self._instance.get_run_by_id(run.run_id) or run.with_tags({**run.tags, **tags})
            context = SubmitRunContext(run, workspace=context.workspace)
        return submit_or_skip(self._instance, run, lambda: super(MaestroRunCoordinator, self).submit_run(context))

    def get_run_queue_config(self) -> RunQueueConfig:
        """The configured queue settings plus each limited workflow's tag concurrency limit (read by the daemon
        at every dequeue iteration)."""
        return queue_limits(self._instance, super().get_run_queue_config())
