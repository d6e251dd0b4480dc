"""Maestro ids -> Dagster names (deterministic, injective, safe) and execution ids."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from maestro_dagster import names

DAGSTER_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")


@pytest.mark.parametrize("safe", ["a", "phase_design", "sdlc_parallel", "Build2", "x_y_z", "deadbeef"])
def test_dagster_name_is_identity_on_safe_ids(safe: str) -> None:
    assert names.dagster_name(safe) == safe


@pytest.mark.parametrize("unsafe", ["a-b", "1abc", "config", "a__b", "x_deadbeef", "trailing_", "-", "_a", "for"])
def test_dagster_name_sanitises_unsafe_ids(unsafe: str) -> None:
    result = names.dagster_name(unsafe)
    assert result != unsafe
    assert DAGSTER_NAME_RE.match(result)
    assert result[0].isalpha()
    assert names.OP_SEPARATOR not in result
    assert result not in names.RESERVED_NAMES
    assert names.dagster_name(unsafe) == result  # deterministic


def test_sanitised_names_keep_a_readable_base() -> None:
    assert names.dagster_name("a-b").startswith("a_b_")
    assert names.dagster_name("1abc").startswith("n_1abc_")
    assert names.dagster_name("config").startswith("config_")


def test_dagster_name_is_injective_on_tricky_ids() -> None:
    tricky = [
        "a-b", "a_b", "A-b", "A_b", "a--b", "a__b", "a_-b", "config", "config_", "config_1", "1abc", "n_1abc",
        "x_deadbeef", "x-deadbeef", "x", "-x", "x-", "_x", "x_", "ab", "a-b-c", "a_b_c", "context", "Config",
    ]  # fmt: skip
    assert all(names.ID_RE.match(i) for i in tricky)
    mapped = [names.dagster_name(i) for i in tricky]
    assert len(set(mapped)) == len(tricky)
    # a hashed name is never the identity name of another id
    for maestro_id, name in zip(tricky, mapped, strict=True):
        if name != maestro_id:
            assert not names.is_safe_name(name) or name not in tricky


def test_op_name_is_unique_across_job_node_pairs() -> None:
    pairs = [("a", "b__c"), ("a__b", "c"), ("a", "b_c"), ("a_b", "c"), ("a-b", "c"), ("a", "b-c")]
    op_names = [names.op_name(job, node) for job, node in pairs]
    assert len(set(op_names)) == len(pairs)
    assert names.op_name("sdlc_parallel", "phase_design") == "sdlc_parallel__phase_design"
    assert all(DAGSTER_NAME_RE.match(n) for n in op_names)
    assert names.job_name("sdlc_parallel") == "sdlc_parallel"


def test_new_execution_id_format() -> None:
    at = datetime(2025, 10, 11, 12, 0, 0, tzinfo=UTC)
    value = names.new_execution_id("sdlc_parallel", at, "abc12345")
    assert value == "exec_sdlc_parallel_20251011_120000_abc12345"
    match = names.EXECUTION_ID_RE.match(value)
    assert match and match["workflow_id"] == "sdlc_parallel" and match["ts"] == "20251011_120000"

    fresh = names.new_execution_id("my-flow")
    match = names.EXECUTION_ID_RE.match(fresh)
    assert match and match["workflow_id"] == "my-flow"
    assert re.fullmatch(r"[0-9a-f]{8}", match["suffix"])
    assert names.new_execution_id("w") != names.new_execution_id("w")


def test_execution_id_is_utc() -> None:
    paris = timezone(timedelta(hours=2))
    at = datetime(2025, 10, 11, 14, 0, 0, tzinfo=paris)
    assert names.new_execution_id("w", at, "00000000") == "exec_w_20251011_120000_00000000"


def test_execution_id_for_run_derives_from_run_id() -> None:
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    value = names.execution_id_for_run("wf", "1234abcd-ef00-0000-0000-000000000000", at)
    assert value == "exec_wf_20250102_030405_1234abcd"
    assert names.EXECUTION_ID_RE.match(value)
