"""Partitioned schedules: validation of their bad forms, a 3-window backfill run through Dagster into the tables
(partition columns, the window in the nodes' context, mirror verify clean) and the catch-up of missed windows by
the schedule's own evaluation (Dagster's ``build_schedule_context``, not the daemon). SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from _defs import chain, definition, echo
from dagster import build_schedule_context
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository
from sqlalchemy import select

from maestro_dagster.db import get_db
from maestro_dagster.db.models import WorkflowExecution
from maestro_dagster.executions.backfill import run_backfill, windows
from maestro_dagster.executions.transport import IN_PROCESS, LocalTransport
from maestro_dagster.policy import DefinitionPolicy
from maestro_dagster.spec import validate_definition
from maestro_dagster.states import WorkflowStatus
from maestro_dagster.triggers.build import build_schedule


def daily(**schedule) -> dict:
    fields = {"cron": "0 0 * * *", "partitioned": True, "start_date": "2026-11-01", **schedule}
    return definition("daily", {"extract": echo(output={"rows": 3}), "load": {}}, chain("extract", "load"),
                      schedules=[fields])  # fmt: skip


def codes(raw: dict) -> dict[str, str]:
    report = validate_definition(raw, policy=DefinitionPolicy.allowing())
    return {p.location: p.message for p in report.errors if p.code == "bad_partition"}


def test_bad_partitioned_schedules_are_named():
    assert "needs start_date" in codes(daily(start_date=None))["schedules[0].start_date"]
    assert "not an ISO 8601" in codes(daily(start_date="2026-13-40"))["schedules[0].start_date"]
    plain = definition("p", {"a": {}}, [], schedules=[{"cron": "0 0 * * *", "catchup": True}])
    assert "only to a partitioned schedule" in codes(plain)["schedules[0].catchup"]
    two = daily()
    two["schedules"].append({"cron": "0 6 * * *", "partitioned": True, "start_date": "2026-11-01", "name": "b"})
    assert "2 schedules are partitioned" in codes(two)["schedules"]
    assert codes(daily(catchup=True)) == {}


def _executions(settings) -> list[WorkflowExecution]:
    with get_db(settings) as session:
        rows = session.scalars(select(WorkflowExecution).where(WorkflowExecution.workflow_id == "daily"))
        return sorted(rows, key=lambda e: e.partition_key or "")


def test_three_window_backfill_is_three_mirrored_executions(maestro_env):
    spec = maestro_env.add_definition(daily(initial_context={"requirement": "nightly"}))
    keys = windows(spec, "2026-11-02", "2026-11-04")
    assert keys == ["2026-11-02", "2026-11-03", "2026-11-04"]
    transport = LocalTransport(maestro_env.instance, maestro_env.settings, in_process=True)
    launched = run_backfill(transport, spec, keys, max_concurrent=2)
    assert [item.partition_key for item in launched] == keys
    executions = _executions(maestro_env.settings)
    assert [e.partition_key for e in executions] == keys
    for execution, key in zip(executions, keys, strict=True):
        day = int(key[-2:])
        assert execution.status is WorkflowStatus.COMPLETED
        assert execution.partition_start == f"2026-11-{day:02d}T00:00:00+00:00"
        assert execution.partition_end == f"2026-11-{day + 1:02d}T00:00:00+00:00"
        assert execution.initial_context["requirement"] == "nightly"
        assert execution.initial_context["partition_key"] == key  # what every node sees in its global_context
        assert execution.initial_context["partition_end"] == execution.partition_end
        assert execution.execution_metadata["trigger"] == "backfill"
        assert maestro_env.verify(execution.id) == []


def _repository():
    """The code location's repository (Dagster resolves a partition_key request through it)."""
    ReconstructableJob.get_definition.cache_clear()
    return ReconstructableRepository.for_module("maestro_dagster.definitions", "maestro").get_definition()


def test_catchup_requests_the_missed_windows_once(maestro_env):
    spec = maestro_env.add_definition(daily(catchup=True, start_date="2026-11-01"))
    schedule = build_schedule(spec, 0)
    at = datetime(2026, 11, 4, 0, 0, tzinfo=UTC)  # three windows have ended: 11-01, 11-02, 11-03
    with build_schedule_context(
        instance=maestro_env.instance, scheduled_execution_time=at, repository_def=_repository()
    ) as context:
        requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert [r.run_key for r in requests] == ["2026-11-01", "2026-11-02", "2026-11-03"]

    transport = LocalTransport(maestro_env.instance, maestro_env.settings, in_process=True)
    run_backfill(transport, spec, ["2026-11-01", "2026-11-02"])  # two windows have run since
    with build_schedule_context(
        instance=maestro_env.instance, scheduled_execution_time=at, repository_def=_repository()
    ) as context:
        again = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in again] == ["2026-11-03"]

    no_catchup = build_schedule(maestro_env.add_definition(daily()), 0)
    with build_schedule_context(
        instance=maestro_env.instance, scheduled_execution_time=at, repository_def=_repository()
    ) as context:
        latest = no_catchup.evaluate_tick(context).run_requests
    assert [r.partition_key for r in latest] == ["2026-11-03"]


def test_a_run_with_only_dagsters_partition_tag_is_mirrored_with_its_window(maestro_env):
    """What the Dagster UI's backfill (or launchpad) starts: the job's partition config and dagster/partition, no
    Maestro tag; the run coordinator is not in this path, so the execution id is the one derived from the run."""
    from dagster import execute_job

    maestro_env.add_definition(daily())
    ReconstructableJob.get_definition.cache_clear()
    recon = ReconstructableRepository.for_module("maestro_dagster.definitions", "maestro")
    job = recon.get_definition().get_job("daily")
    run_config = {**job.partitioned_config.get_run_config_for_partition_key("2026-11-05"), "execution": IN_PROCESS}
    with execute_job(
        recon.get_reconstructable_job("daily"), maestro_env.instance, run_config=run_config,
        tags={"dagster/partition": "2026-11-05"},
    ) as result:  # fmt: skip
        assert result.success
    (execution,) = _executions(maestro_env.settings)
    assert (execution.partition_key, execution.partition_start, execution.partition_end) == (
        "2026-11-05",
        "2026-11-05T00:00:00+00:00",
        "2026-11-06T00:00:00+00:00",
    )
    assert execution.status is WorkflowStatus.COMPLETED
    assert execution.initial_context["partition_start"] == "2026-11-05T00:00:00+00:00"
    assert maestro_env.verify(execution.id) == []
