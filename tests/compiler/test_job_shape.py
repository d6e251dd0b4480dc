"""The shape of a compiled job: names, tags, run config, unique op names; and the shipped workflow_defs."""

from __future__ import annotations

import pytest
from _compiler_support import PROJECT_ROOT, job_from_raw, run, spec_of
from _defs import definition, echo
from dagster import DagsterInvalidConfigError, Definitions

from maestro_dagster.compiler import build_job, node_id_by_step_key
from maestro_dagster.names import dagster_name, job_name, op_name
from maestro_dagster.policy import DefinitionPolicy
from maestro_dagster.settings import get_settings
from maestro_dagster.spec import iter_definition_files, validate_file

WORKFLOW_DEFS = PROJECT_ROOT / "workflow_defs"


def test_job_and_op_names_and_tags():
    raw = definition("orders-etl", {"extract": echo(), "load-2": echo()}, [("extract", "load-2")])
    job = build_job(spec_of(raw), version=7)
    assert job.name == job_name("orders-etl") == dagster_name("orders-etl")
    assert job.name.startswith("orders_etl_") and len(job.name) == len("orders_etl_") + 8
    assert sorted(d.name for d in job.graph.node_defs) == sorted(
        [f"{job.name}__extract", f"{job.name}__{dagster_name('load-2')}"]
    )
    assert [d.name for d in job.graph.node_defs] == [op_name("orders-etl", n) for n in ("extract", "load-2")]
    aliases = sorted(node.name for node in job.graph.nodes)
    assert aliases == sorted(["extract", dagster_name("load-2")])
    assert node_id_by_step_key(spec_of(raw)) == {"extract": "extract", dagster_name("load-2"): "load-2"}
    assert job.tags == {"maestro/workflow_id": "orders-etl", "maestro/workflow_version": "7"}
    assert job.metadata["maestro/workflow_id"].value == "orders-etl"


def test_version_tag_is_omitted_without_a_version():
    job = build_job(spec_of(definition("nov", {"a": {}})))
    assert job.tags == {"maestro/workflow_id": "nov"}


def test_run_tags_carry_the_workflow_id_and_version(instance):
    result = run(definition("tagged", {"a": {}}), instance)
    assert result.dagster_run.tags["maestro/workflow_id"] == "tagged"
    assert result.dagster_run.tags["maestro/workflow_version"] == "1"


def test_run_config_schema_shows_only_initial_context_and_optional_dagster_blocks():
    job = job_from_raw(definition("cfg", {"a": {"retry_policy": {"max_attempts": 2, "retry_on_failure": True}}}))
    fields = job.run_config_schema.config_type.fields
    assert set(fields) == {"initial_context", "execution", "loggers"}
    assert fields["initial_context"].is_required is False
    assert fields["initial_context"].default_value == {}
    assert fields["execution"].is_required is False
    assert fields["loggers"].is_required is False


def test_run_config_accepts_execution_config_and_no_config(instance):
    job = job_from_raw(definition("cfg2", {"a": echo()}))
    result = job.execute_in_process(
        run_config={"initial_context": {"a": 1}, "execution": {"config": {"in_process": {}}}}, instance=instance
    )
    assert result.output_for_node("a").output["global_context"] == {"a": 1}
    assert job.execute_in_process(instance=instance).output_for_node("a").output["global_context"] == {}


def test_unknown_top_level_run_config_is_rejected(instance):
    job = job_from_raw(definition("cfg3", {"a": {}}))
    with pytest.raises(DagsterInvalidConfigError, match="ops"):
        job.execute_in_process(run_config={"initial_context": {}, "ops": {}}, instance=instance)


def test_two_workflows_never_collide_on_op_names(instance):
    # Naively joining ids with "__" would give both of these the op name "etl__load__raw".
    first = job_from_raw(definition("etl", {"load__raw": echo()}))
    second = job_from_raw(definition("etl__load", {"raw": echo()}))
    # Same node ids in two workflows (as sdlc_linear and sdlc_parallel have).
    third = job_from_raw(definition("other", {"load__raw": echo(), "raw": echo()}))
    jobs = [first, second, third]
    names = [d.name for job in jobs for d in job.graph.node_defs]
    assert len(names) == len(set(names)) == 4
    repository = Definitions(jobs=jobs).get_repository_def()
    assert sorted(j.name for j in repository.get_all_jobs()) == sorted(j.name for j in jobs)
    for job in jobs:
        assert job.execute_in_process(instance=instance).success


def test_same_node_ids_in_two_workflows_give_distinct_ops():
    nodes = {"phase_design": {"type": "phase"}, "phase_review": {"type": "phase"}}
    jobs = [job_from_raw(definition(wid, nodes, [("phase_design", "phase_review")])) for wid in ("wf_a", "wf_b")]
    repository = Definitions(jobs=jobs).get_repository_def()
    assert len(repository.get_all_jobs()) == 2
    assert {d.name for d in jobs[0].graph.node_defs}.isdisjoint({d.name for d in jobs[1].graph.node_defs})


# ---- the shipped definitions -----------------------------------------------------------------------
def test_workflow_defs_directory_has_definitions():
    assert len(iter_definition_files(WORKFLOW_DEFS)) >= 4


@pytest.mark.parametrize("path", iter_definition_files(WORKFLOW_DEFS), ids=lambda p: p.name)
def test_every_workflow_def_validates_and_compiles(path):
    report = validate_file(path, DefinitionPolicy.for_origin(get_settings(), "repository"))
    assert report.ok, report.summary()
    job = build_job(report.spec, version=1)
    assert job.name == job_name(report.spec.id)
    fan_outs = sum(n.for_each is not None for n in report.spec.nodes.values())  # a for_each node: 2 ops
    assert len(job.graph.node_defs) == len(report.spec.nodes) + len(report.spec.handlers) + fan_outs  # handlers too


def test_all_workflow_defs_fit_in_one_repository():
    specs = [
        validate_file(p, DefinitionPolicy.for_origin(get_settings(), "repository")).spec
        for p in iter_definition_files(WORKFLOW_DEFS)
    ]
    jobs = [build_job(spec, version=1) for spec in specs]
    repository = Definitions(jobs=jobs).get_repository_def()
    assert sorted(repository.job_names) == sorted(job_name(s.id) for s in specs)
