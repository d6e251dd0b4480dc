"""The rollups as Dagster assets (``maestro_dagster.assets.rollups``) on SQLite and PostgreSQL with a real Dagster
instance: a partition materialized over real mirrored executions and over the hand-computed dataset equals the
report views, twice gives the same rows, a tampered rollup fails the check run alone, several partitions are
materialized as a backfill, the schedule asks for the right days, and the ``maestro`` location lists it all."""

from __future__ import annotations

from datetime import UTC, date, datetime

from _defs import chain, definition, echo, node
from _report_data import D1, D2, insert
from dagster import AssetCheckKey, AssetKey, DefaultScheduleStatus, RepositoryDefinition, build_schedule_context
from dagster._core.remote_representation.external_data import RepositorySnap
from sqlalchemy import select, text, update

from maestro_dagster.assets import reporting_definitions
from maestro_dagster.assets import rollups as rollup_assets
from maestro_dagster.db.models import (
    DailyDurationBuckets,
    DailyNodeStats,
    DailyWorkflowStats,
    RollupDay,
    WorkflowExecution,
)
from maestro_dagster.db.session import get_db

KEYS = [AssetKey(t) for t in rollup_assets.TABLES]


def _rows(settings, model) -> list[dict]:
    with get_db(settings) as session:
        columns = list(model.__table__.columns)
        result = session.execute(select(*columns).order_by(*model.__table__.primary_key)).mappings()
        return [dict(r) for r in result]


def _view(settings, sql: str) -> list[dict]:
    with get_db(settings) as session:
        return [dict(r) for r in session.execute(text(sql)).mappings()]


def _all_rollups(settings) -> dict:
    return {m: _rows(settings, m) for m in (DailyWorkflowStats, DailyNodeStats, DailyDurationBuckets)}


def _insert_dataset(settings) -> None:
    with get_db(settings) as session:
        insert(session)


def test_a_partition_over_real_executions_equals_the_views(maestro_env):
    nodes = {"first": echo(output={"rows": 3}), "broken": node("fail"), "after": echo(output={})}
    maestro_env.add_definition(definition("rolled", nodes, chain("first", "broken", "after")))
    assert not maestro_env.run("rolled").success
    assert maestro_env.run("rolled", {"again": True}).execution_id
    with get_db(maestro_env.settings) as session:
        day = session.scalars(select(WorkflowExecution.created_at)).first().astimezone(UTC).date()

    run = rollup_assets.run_day(maestro_env.instance, day)
    assert run.success and run.check_passed, run
    assert (run.metadata["executions"], run.metadata["workflows"], run.metadata["nodes"]) == (2, 1, 3)
    assert run.metadata["kept"] is False

    (stats,) = _rows(maestro_env.settings, DailyWorkflowStats)
    (view,) = _view(maestro_env.settings, "SELECT * FROM report_workflow_stats")
    for column in ("executions", "completed", "failed", "cancelled"):
        assert stats[column] == view[column], column
    assert (stats["workflow_id"], stats["day"], stats["failed"]) == ("rolled", day, 2)
    nodes_view = {r["node_id"]: r for r in _view(maestro_env.settings, "SELECT * FROM report_node_stats")}
    for row in _rows(maestro_env.settings, DailyNodeStats):
        shown = nodes_view[row["node_id"]]
        for column in ("node_states", "completed", "failed", "blocked", "attempts", "retries"):
            assert row[column] == shown[column], (row["node_id"], column)
    executions = _view(maestro_env.settings, "SELECT * FROM report_executions")
    assert stats["runs"] == sum(e["runs"] for e in executions)

    materialization = maestro_env.instance.get_latest_materialization_event(KEYS[0]).asset_materialization
    assert materialization.partition == day.isoformat()
    assert materialization.metadata["executions"].value == 2


def test_materializing_twice_gives_the_same_rows_and_records_the_day(maestro_env):
    _insert_dataset(maestro_env.settings)
    first = rollup_assets.run_day(maestro_env.instance, D1)
    assert first.success and first.check_passed
    assert (first.metadata["executions"], first.metadata["workflows"], first.metadata["nodes"]) == (3, 1, 2)
    rows = _all_rollups(maestro_env.settings)
    (alpha,) = rows[DailyWorkflowStats]
    (view,) = _view(maestro_env.settings, "SELECT * FROM report_workflow_stats WHERE workflow_id = 'alpha'")
    assert (alpha["executions"], alpha["completed"], alpha["failed"]) == (view["executions"], 2, 1)

    second = rollup_assets.run_day(maestro_env.instance, D1)
    assert second.success and second.run_id != first.run_id
    assert _all_rollups(maestro_env.settings) == rows
    with get_db(maestro_env.settings) as session:
        state = session.get(RollupDay, D1)
        assert state.materialized_at is not None and state.check_passed is True and state.executions == 3
    partitions = maestro_env.instance.get_materialized_partitions(KEYS[1])
    assert partitions == {D1.isoformat()}


def test_a_tampered_rollup_fails_the_check_run_alone(maestro_env):
    _insert_dataset(maestro_env.settings)
    assert rollup_assets.run_day(maestro_env.instance, D1).check_passed
    with get_db(maestro_env.settings) as session:
        session.execute(update(DailyWorkflowStats).where(DailyWorkflowStats.day == D1).values(failed=0))
        session.execute(update(DailyNodeStats).where(DailyNodeStats.node_id == "b").values(retries=7))
    materializations = len(maestro_env.instance.fetch_materializations(KEYS[0], limit=100).records)

    checked = rollup_assets.run_day(maestro_env.instance, D1, check_only=True)
    assert checked.success and checked.checked and not checked.check_passed
    assert set(checked.differences) == {"daily_workflow_stats", "daily_node_stats"}
    assert any("failed is 0" in d for d in checked.differences["daily_workflow_stats"])
    assert any("retries is 7" in d for d in checked.differences["daily_node_stats"])
    assert len(maestro_env.instance.fetch_materializations(KEYS[0], limit=100).records) == materializations
    with get_db(maestro_env.settings) as session:
        assert session.get(RollupDay, D1).check_passed is False
        (alpha,) = session.scalars(select(DailyWorkflowStats)).all()
        assert alpha.failed == 0  # nothing was rebuilt

    for key, passed in [(KEYS[0], False), (KEYS[1], False), (KEYS[2], True)]:
        check_key = AssetCheckKey(key, rollup_assets.CHECK_NAME)
        (latest,) = maestro_env.instance.event_log_storage.get_asset_check_execution_history(check_key, limit=1)
        evaluation = latest.event.dagster_event.event_specific_data
        assert (evaluation.passed, evaluation.partition, evaluation.severity.value) == (passed, "2026-10-01", "ERROR")
    workflow_check = AssetCheckKey(KEYS[0], rollup_assets.CHECK_NAME)
    (latest,) = maestro_env.instance.event_log_storage.get_asset_check_execution_history(workflow_check, limit=1)
    metadata = latest.event.dagster_event.event_specific_data.metadata
    assert metadata["difference_count"].value >= 1 and "failed is 0" in " ".join(metadata["differences"].value)

    rebuilt = rollup_assets.run_day(maestro_env.instance, D1)  # a rebuild repairs it
    assert rebuilt.check_passed


def test_a_backfill_of_several_partitions_and_a_pruned_day(maestro_env):
    _insert_dataset(maestro_env.settings)
    for day in (D1, D2, date(2026, 10, 3)):
        assert rollup_assets.run_day(maestro_env.instance, day).success
    assert maestro_env.instance.get_materialized_partitions(KEYS[0]) == {"2026-10-01", "2026-10-02", "2026-10-03"}
    assert [r["workflow_id"] for r in _rows(maestro_env.settings, DailyWorkflowStats)] == ["alpha", "beta"]

    with get_db(maestro_env.settings) as session:  # as retention does before it removes the day's raw rows
        session.get(RollupDay, D2).pruning_started_at = datetime.now(UTC)
        session.execute(text("DELETE FROM workflow_executions WHERE workflow_id = 'beta'"))
    kept = rollup_assets.run_day(maestro_env.instance, D2)
    assert kept.success and kept.metadata["kept"] is True and kept.check_passed
    assert [r["workflow_id"] for r in _rows(maestro_env.settings, DailyWorkflowStats)] == ["alpha", "beta"]


def test_the_schedule_asks_for_yesterday_and_the_day_before():
    repository = reporting_definitions().get_repository_def()
    schedule = repository.get_schedule_def(rollup_assets.SCHEDULE_NAME)
    assert schedule.job_name == rollup_assets.JOB_NAME
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("30 0 * * *", "UTC")
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    context = build_schedule_context(
        repository_def=repository, scheduled_execution_time=datetime(2026, 10, 5, 0, 30, tzinfo=UTC)
    )
    requests = list(schedule.evaluate_tick(context).run_requests)
    assert [r.partition_key for r in requests] == ["2026-10-03", "2026-10-04"]
    assert len({r.run_key for r in requests}) == 2


def test_the_location_lists_the_assets_checks_jobs_and_schedule(maestro_env):
    from maestro_dagster.definitions import MaestroRepositoryData

    maestro_env.add_definition(definition("beside", {"only": echo(output={})}))
    maestro_env.add_definition(definition(rollup_assets.JOB_NAME, {"only": echo(output={})}))  # a name taken
    worker = MaestroRepositoryData()
    assert worker.get_job("beside").name == "beside"
    assert worker._reporting_data is None  # a workflow's run worker never builds the reporting definitions
    data = MaestroRepositoryData()
    assert {"beside", rollup_assets.JOB_NAME, rollup_assets.CHECK_JOB_NAME, "__ASSET_JOB"} <= set(data.get_job_names())
    assert data.has_job(rollup_assets.JOB_NAME) and data.has_job("beside")
    assert data.get_job(rollup_assets.JOB_NAME).partitions_def == rollup_assets.PARTITIONS  # the reporting job wins
    assert sorted(data.get_job_names()).count(rollup_assets.JOB_NAME) == 1
    assert rollup_assets.SCHEDULE_NAME in [s.name for s in data.get_all_schedules()]
    assert set(data.get_assets_defs_by_key()) == set(KEYS)
    assert {k.name for k in data.get_asset_checks_defs_by_key()} == {rollup_assets.CHECK_NAME}

    repository = RepositoryDefinition("maestro", repository_data=MaestroRepositoryData())  # as @repository builds it
    snap = RepositorySnap.from_def(repository)  # what the webserver's asset graph is drawn from
    nodes = {n.asset_key: n for n in snap.asset_nodes}
    assert set(nodes) == set(KEYS)
    assert {n.group_name for n in nodes.values()} == {rollup_assets.GROUP}
    assert all(rollup_assets.JOB_NAME in n.job_names for n in nodes.values())
    checks = snap.asset_check_nodes or []
    assert {(c.asset_key, c.name) for c in checks} == {(k, rollup_assets.CHECK_NAME) for k in KEYS}
    assert all(c.partitions_def_snapshot is not None for c in checks)
    assert rollup_assets.SCHEDULE_NAME in {s.name for s in snap.schedules}
    assert "beside" in {j.name for j in snap.job_datas or []}


def test_the_schedules_runs_through_the_location_materialize_their_days(maestro_env):
    """What the daemon does at a tick: the schedule's run requests, each run of the location's own job (the module
    the code server loads), one partition each, as a backfill from the UI launches them."""
    from dagster import execute_job
    from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository

    _insert_dataset(maestro_env.settings)
    ReconstructableJob.get_definition.cache_clear()
    location = ReconstructableRepository.for_module("maestro_dagster.definitions", "maestro")
    schedule = location.get_definition().get_schedule_def(rollup_assets.SCHEDULE_NAME)
    context = build_schedule_context(
        repository_def=location.get_definition(), scheduled_execution_time=datetime(2026, 10, 3, 0, 30, tzinfo=UTC)
    )
    for request in schedule.evaluate_tick(context).run_requests:
        job = location.get_reconstructable_job(rollup_assets.JOB_NAME)
        tags = {**request.tags, "dagster/partition": request.partition_key}
        with execute_job(job, maestro_env.instance, tags=tags) as result:
            assert result.success
    assert maestro_env.instance.get_materialized_partitions(KEYS[2]) == {"2026-10-01", "2026-10-02"}
    assert [r["workflow_id"] for r in _rows(maestro_env.settings, DailyWorkflowStats)] == ["alpha", "beta"]
    with get_db(maestro_env.settings) as session:
        assert [s.check_passed for s in session.scalars(select(RollupDay).order_by(RollupDay.day))] == [True, True]
