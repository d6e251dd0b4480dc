"""The ``concurrency:`` block and a node's ``pool:`` are validated before activation: bad forms are refused with a
``bad_concurrency`` problem naming the field and the fix; a valid one compiles onto the job's tags and the op's
pool, and a definition without them keeps its hash."""

from __future__ import annotations

import pytest
from _defs import definition, echo

from maestro_dagster.compiler.job import build_job
from maestro_dagster.errors import ConfigError
from maestro_dagster.policy import DefinitionPolicy, ExecutorPolicy
from maestro_dagster.settings import Settings, parse_pools
from maestro_dagster.spec import validate_definition as _validate
from maestro_dagster.tags import TAG_CONCURRENCY_LIMIT, TAG_ON_LIMIT


def validate_definition(raw):
    return _validate(raw, policy=DefinitionPolicy.allowing("maestro_examples"))


def _problem(raw):
    report = validate_definition(raw)
    assert not report.ok
    (problem,) = report.errors
    return problem


@pytest.mark.parametrize("limit", [0, -1, 1001, "2", 1.5, True])
def test_a_bad_limit_names_the_field_and_the_fix(limit):
    problem = _problem(definition("wf", {"a": echo()}, concurrency={"limit": limit}))
    assert problem.location == "concurrency.limit" and problem.code == "bad_concurrency"
    assert "1 to 1000" in problem.message and "concurrency: {limit: 2}" in problem.message


def test_an_unknown_on_limit_and_a_missing_limit_are_refused():
    problem = _problem(definition("wf", {"a": echo()}, concurrency={"limit": 2, "on_limit": "drop"}))
    assert problem.location == "concurrency.on_limit" and "'queue'" in problem.message and "'skip'" in problem.message
    problem = _problem(definition("wf", {"a": echo()}, concurrency={"on_limit": "skip"}))
    assert problem.location == "concurrency.limit" and "missing" in problem.message
    problem = _problem(definition("wf", {"a": echo()}, concurrency={"limit": 2, "max": 3}))
    assert "unknown field 'max'" in problem.message and "limit, on_limit" in problem.message


@pytest.mark.parametrize("pool", ["gpu pool", "", "x" * 65, "gpu/1", 3])
def test_a_bad_pool_names_the_node_and_the_fix(pool):
    problem = _problem(definition("wf", {"train": {**echo(), "pool": pool}}))
    assert problem.location == "nodes.train.pool" and problem.node_id == "train"
    assert problem.code == "bad_concurrency" and "pool: gpu" in problem.message


def test_a_valid_block_compiles_onto_job_tags_and_op_pools_and_none_keeps_the_hash():
    plain = validate_definition(definition("wf", {"a": echo()})).raise_if_invalid()
    assert "concurrency" not in plain.to_storage() and "pool" not in plain.to_storage()["nodes"]["a"]
    raw = definition("wf", {"a": {**echo(), "pool": "gpu"}, "b": echo()}, concurrency={"limit": 2, "on_limit": "skip"})
    spec = validate_definition(raw).raise_if_invalid()
    assert spec.to_storage()["concurrency"] == {"limit": 2, "on_limit": "skip"}
    assert type(spec).from_storage(spec.to_storage()) == spec and spec.content_hash() != plain.content_hash()
    job = build_job(spec, executors=ExecutorPolicy.allowing("maestro_examples"))
    assert job.tags[TAG_CONCURRENCY_LIMIT] == "2" and job.tags[TAG_ON_LIMIT] == "skip"
    pools = {node.name: node.definition.pool for node in job.graph.nodes}
    assert pools == {"a": "gpu", "b": None}
    default = validate_definition(definition("wf", {"a": echo()}, concurrency={"limit": 3})).raise_if_invalid()
    assert default.concurrency.on_limit == "queue"


def test_pools_setting_is_read_and_refused_with_the_fix():
    assert parse_pools("gpu=2, db.main=4") == {"gpu": 2, "db.main": 4}
    assert parse_pools("") == {}
    for bad in ("gpu", "gpu=two", "bad name=1"):
        with pytest.raises(ValueError, match="gpu=2,db=4"):
            parse_pools(bad)
    assert Settings(MAESTRO_POOLS="gpu=1").pools == {"gpu": 1}
    with pytest.raises((ValueError, ConfigError)):
        Settings(MAESTRO_POOLS="gpu=-1")
