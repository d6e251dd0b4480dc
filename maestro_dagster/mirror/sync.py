"""The catch-up loop: mirror every Maestro run not yet complete (in batches, ``batch.py``), and fail runs whose
worker died.

Called by the daemon's sensor (``maestro_mirror_sensor``) and ``maestro mirror sync``. A run started
outside a run launcher (``dagster job execute``, ``maestro run``) whose process is killed is never noticed
by Dagster itself: its worker pid and host are run tags (see ``live.py``), and a run that is still
"started" while that process no longer exists on this host is reported failed here, so it ends
``failed`` in Dagster and in the tables. The bound is the loop's interval (the sensor's, 5 s by default).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import datetime

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus
from sqlalchemy import select

from maestro_dagster.db.models import ExecutionRun
from maestro_dagster.db.session import get_db
from maestro_dagster.launcher.launcher import pid_alive
from maestro_dagster.mirror.batch import mirror_runs
from maestro_dagster.mirror.projector import MirrorResult
from maestro_dagster.mirror.source import iter_maestro_run_records
from maestro_dagster.settings import Settings, get_settings
from maestro_dagster.tags import TAG_WORKER_HOST, TAG_WORKER_PID


@dataclass
class SyncReport:
    runs: list[MirrorResult] = field(default_factory=list)
    failed_dead_runs: list[str] = field(default_factory=list)
    unknown_run_ids: list[str] = field(default_factory=list)  # asked for by id, and Dagster has no such run

    @property
    def events_read(self) -> int:
        return sum(r.events_read for r in self.runs)

    @property
    def errors(self) -> list[MirrorResult]:
        return [r for r in self.runs if r.error]

    @property
    def unmirrored(self) -> list[tuple[str, str]]:
        """(run id, why) of every run this pass left unmirrored: a write that failed, a run skipped (its
        workflow definition is not stored, e.g. after a downgrade; not a Maestro job), a run id Dagster does not
        know. ``maestro mirror sync`` exits 1 when there is any, as ``maestro mirror verify`` would."""
        out = [(r.run_id, r.error or r.skipped_reason or "") for r in self.runs if r.error or r.skipped_reason]
        return out + [(run_id, "no such Dagster run") for run_id in self.unknown_run_ids]


def worker_is_dead(run: DagsterRun) -> bool:
    """True when the run is started, ran on this host, and its worker process is gone."""
    if run.status not in (DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING):
        return False
    pid, host = run.tags.get(TAG_WORKER_PID), run.tags.get(TAG_WORKER_HOST)
    if not pid or not pid.isdigit() or host != socket.gethostname():
        return False
    return not pid_alive(int(pid))


def fail_dead_run(instance: DagsterInstance, run: DagsterRun) -> None:
    pid = run.tags.get(TAG_WORKER_PID)
    instance.report_run_failed(
        run, f"The process running this run (pid {pid} on {run.tags.get(TAG_WORKER_HOST)}) died; marked failed."
    )


def _complete_run_ids(settings: Settings) -> set[str]:
    with get_db(settings) as session:
        return set(session.scalars(select(ExecutionRun.run_id).where(ExecutionRun.mirror_complete.is_(True))))


def sync_runs(
    instance: DagsterInstance,
    *,
    run_ids: list[str] | None = None,
    updated_after: datetime | None = None,
    settings: Settings | None = None,
) -> SyncReport:
    """Mirror the given runs, or every Maestro run not yet completely mirrored."""
    settings = settings or get_settings()
    report = SyncReport()
    if run_ids is not None:
        found = {rid: instance.get_run_record_by_id(rid) for rid in run_ids}
        report.unknown_run_ids = [rid for rid, record in found.items() if record is None]
        records = [record for record in found.values() if record is not None]
    else:
        done = _complete_run_ids(settings)
        listed = iter_maestro_run_records(instance, updated_after=updated_after)
        records = [r for r in listed if r.dagster_run.run_id not in done]
    for i, record in enumerate(records):
        if not worker_is_dead(record.dagster_run):
            continue
        # Read again: the listing may be seconds old, and the launcher that started the run fails it
        # itself as soon as its worker exits. (Should both still report it, the mirror counts one end.)
        current = instance.get_run_record_by_id(record.dagster_run.run_id) or record
        if worker_is_dead(current.dagster_run):
            fail_dead_run(instance, current.dagster_run)
            report.failed_dead_runs.append(current.dagster_run.run_id)
            current = instance.get_run_record_by_id(current.dagster_run.run_id) or current  # its status changed
        records[i] = current
    report.runs.extend(mirror_runs(instance, records, settings))
    return report
