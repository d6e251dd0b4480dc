"""Every run of a Maestro execution carries ``maestro/execution_id``, whatever submitted or launched it.

With a real Dagster instance configured by ``dagster.yaml``: a run submitted without the tag (as the Dagster UI,
``dagster job launch``, schedules and sensors submit) has it once queued, and a run launched without the
coordinator gets it from the launcher. The id is the mirror's (one rule, ``maestro_dagster.tags.execution_id_of_run``,
which the webserver and daemon load without the compiler) for a lone run, a re-execution of an untagged root,
and runs whose root or self is tagged.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from dagster import DagsterRunStatus
from dagster._core.remote_origin import InProcessCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from test_launcher import finished, one_node

from maestro_dagster import tags
from maestro_dagster.executions import IN_PROCESS, recon_job
from maestro_dagster.launcher import MaestroRunCoordinator
from maestro_dagster.launcher.launcher import TAG_LAUNCH
from maestro_dagster.names import EXECUTION_ID_RE, execution_id_for_run, job_name
from maestro_dagster.tags import execution_id_of_run

ROOT = Path(__file__).resolve().parents[2]


def untagged_run(env, workflow_id: str, **kwargs):
    """A run of the workflow's job as Dagster creates it for a UI launch: the job's tags, no execution id."""
    recon = recon_job(workflow_id)
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="maestro_dagster.definitions", attribute="maestro",
                             working_directory=str(ROOT)),
        location_name="maestro",
    )  # fmt: skip
    job_def = recon.get_definition()
    return env.instance.create_run_for_job(
        job_def=job_def,
        run_config={"execution": IN_PROCESS},
        tags=dict(job_def.tags),
        job_code_origin=recon.get_python_origin(),
        remote_job_origin=RemoteJobOrigin(RemoteRepositoryOrigin(origin, "maestro"), job_name(workflow_id)),
        **kwargs,
    )


def test_both_instance_files_configure_the_coordinator(maestro_env):
    coordinator = maestro_env.instance.run_coordinator
    assert isinstance(coordinator, MaestroRunCoordinator) and isinstance(coordinator, QueuedRunCoordinator)
    sections = [yaml.safe_load((ROOT / name).read_text())["run_coordinator"]
                for name in ("dagster.yaml", "dagster.postgres.yaml")]  # fmt: skip
    assert sections[0] == sections[1]
    assert sections[0]["class"] == "MaestroRunCoordinator" and sections[0]["module"] == "maestro_dagster.launcher"
    assert coordinator.dequeue_interval_seconds == 1 and coordinator.get_run_queue_config().max_concurrent_runs == 10


def test_a_run_submitted_without_the_tag_has_it_while_queued(maestro_env):
    maestro_env.add_definition(one_node("tag_submit", "echo"))
    run = untagged_run(maestro_env, "tag_submit")
    assert tags.TAG_EXECUTION_ID not in run.tags
    maestro_env.instance.submit_run(run.run_id, workspace=None)  # no daemon here: it stays queued

    queued = maestro_env.instance.get_run_by_id(run.run_id)
    assert queued.status == DagsterRunStatus.QUEUED
    record = maestro_env.instance.get_run_record_by_id(run.run_id)
    expected = execution_id_for_run("tag_submit", run.run_id, record.create_timestamp)
    assert queued.tags[tags.TAG_EXECUTION_ID] == expected and EXECUTION_ID_RE.match(expected)
    assert execution_id_of_run(maestro_env.instance, queued) == expected  # what the mirror will use


def test_ids_agree_with_the_mirrors_for_roots_reexecutions_and_tagged_runs(maestro_env):
    maestro_env.add_definition(one_node("tag_rules", "echo"))
    instance = maestro_env.instance
    root = untagged_run(maestro_env, "tag_rules")
    child_kw = {"root_run_id": root.run_id, "parent_run_id": root.run_id}
    child = untagged_run(maestro_env, "tag_rules", **child_kw)
    grandchild = untagged_run(maestro_env, "tag_rules", root_run_id=root.run_id, parent_run_id=child.run_id)
    runs = [root, child, grandchild]
    created = instance.get_run_record_by_id(root.run_id).create_timestamp
    expected = execution_id_for_run("tag_rules", root.run_id, created)  # derived from the root run
    assert [execution_id_of_run(instance, run) for run in runs] == [expected] * 3  # re-executions: the root's id

    tagged_root = untagged_run(maestro_env, "tag_rules")
    instance.add_run_tags(tagged_root.run_id, {tags.TAG_EXECUTION_ID: "exec_tag_rules_20260101_000000_0123abcd"})
    tagged_child = untagged_run(maestro_env, "tag_rules", root_run_id=tagged_root.run_id,
                                parent_run_id=tagged_root.run_id)  # fmt: skip
    for run in (instance.get_run_by_id(tagged_root.run_id), tagged_child):
        assert execution_id_of_run(instance, run) == "exec_tag_rules_20260101_000000_0123abcd"
    assert tags.missing_execution_tag(instance, instance.get_run_by_id(tagged_root.run_id)) == {}
    plain = instance.create_run_for_job(job_def=recon_job("tag_rules").get_definition(), tags={})
    assert tags.missing_execution_tag(instance, plain) == {}  # not a Maestro workflow's run


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_run_launched_without_the_coordinator_gets_the_tag_from_the_launcher(maestro_env):
    maestro_env.add_definition(one_node("tag_launch", "echo"))
    launcher = maestro_env.instance.run_launcher
    try:
        run = untagged_run(maestro_env, "tag_launch")
        maestro_env.instance.launch_run(run.run_id, workspace=None)
        ended = finished(maestro_env, run.run_id)
        assert ended.status == DagsterRunStatus.SUCCESS and ended.tags[TAG_LAUNCH] in ("warm", "cold")
        record = maestro_env.instance.get_run_record_by_id(run.run_id)
        assert ended.tags[tags.TAG_EXECUTION_ID] == execution_id_for_run(
            "tag_launch", run.run_id, record.create_timestamp
        )
    finally:
        launcher.dispose()
