"""Definition limits (``DefinitionLimits``): each refused with its code and the setting to raise, cheaply, never a
traceback; and validation stays linear in nodes + edges (the cubic ancestry and dependency scans are gone)."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
from _defs import chain, definition

from maestro_dagster.policy import LIMIT_SETTINGS, DefinitionLimits, DefinitionPolicy
from maestro_dagster.spec import PROBLEM_CODES, validate_definition
from maestro_dagster.spec.graph import GraphIndex
from maestro_dagster.spec.limits import check_document

POLICY = DefinitionPolicy.allowing()
GENEROUS_SECONDS = 10  # a guard against super-linear behaviour on two shared cores, not a performance goal


def long_chain(length: int, condition: bool = False) -> dict[str, Any]:
    nodes: dict[str, Any] = {}
    for i in range(length):
        nodes[f"n{i}"] = {"condition": f"outputs['n{i - 1}'].get('ok', True)"} if condition and i else {}
    return definition(f"chain_{length}", nodes, chain(*nodes))


def wide_fan_out(width: int) -> dict[str, Any]:
    leaves = [f"leaf{i}" for i in range(width)]
    nodes: dict[str, Any] = {"root": {}}
    nodes |= {leaf: {"condition": "outputs['root'].get('ok', True)", "dependencies": ["root"]} for leaf in leaves}
    return definition(f"fan_{width}", nodes, [("root", leaf) for leaf in leaves])


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def timed(raw: Any, policy: DefinitionPolicy = POLICY):
    started = time.perf_counter()
    report = validate_definition(raw, policy=policy)
    return report, time.perf_counter() - started


def test_new_codes_are_documented_and_every_limit_has_a_setting() -> None:
    assert {"too_large", "too_deep", "yaml_alias_budget"} <= set(PROBLEM_CODES)
    assert set(LIMIT_SETTINGS) == set(DefinitionLimits.__dataclass_fields__)


def test_a_10000_node_chain_is_refused_by_default_before_the_graph_is_read() -> None:
    report, seconds = timed(long_chain(10_000))
    assert report.codes == ["too_large", "too_large"]
    nodes, edges = report.errors
    assert nodes.location == "nodes" and "10000 nodes" in nodes.message and "MAESTRO_MAX_NODES=1000" in nodes.message
    assert edges.location == "edges" and "MAESTRO_MAX_EDGES=5000" in edges.message
    assert report.workflow_id == "chain_10000" and report.spec is None
    assert seconds < GENEROUS_SECONDS


def test_a_chain_longer_than_max_depth_is_too_deep_and_names_its_ends() -> None:
    assert validate_definition(long_chain(500), policy=POLICY).ok
    report = validate_definition(long_chain(501), policy=POLICY)
    assert report.codes == ["too_deep"]
    problem = report.errors[0]
    assert "'n0'" in problem.message and "'n500'" in problem.message and "501 nodes" in problem.message
    assert "MAESTRO_MAX_DEPTH=500" in problem.message and problem.node_id == "n500"
    raised = DefinitionPolicy.allowing(limits=DefinitionLimits(max_depth=501))
    assert validate_definition(long_chain(501), policy=raised).ok


def test_the_longest_path_counts_nodes_on_the_deepest_branch() -> None:
    graph = GraphIndex.build(["a", "b", "c", "d", "e"], [("a", "b"), ("b", "c"), ("a", "d"), ("d", "c"), ("c", "e")])
    assert graph.longest_path() in (["a", "b", "c", "e"], ["a", "d", "c", "e"])
    assert GraphIndex.build(["x", "y"], []).longest_path() in (["x"], ["y"])


def test_too_many_edges_even_when_they_repeat() -> None:
    raw = {"id": "rep", "nodes": {"a": {}, "b": {}}, "edges": [{"source": "a", "target": "b"}] * 5001}
    report = validate_definition(raw, policy=POLICY)
    assert report.codes == ["too_large"] and report.errors[0].location == "edges"


def test_nesting_of_an_api_document_is_checked_iteratively_before_pydantic() -> None:
    # far deeper than the interpreter's recursion limit: a recursive check or pydantic would crash here
    raw = {"id": "deep", "nodes": {"a": {"config": {"x": nested(100_000)}}}}
    report, seconds = timed(raw)
    assert report.codes == ["too_deep"]
    problem = report.errors[0]
    assert problem.node_id == "a" and problem.location.startswith("nodes.a.config.x[0]")
    assert "MAESTRO_MAX_NESTING=32" in problem.message
    assert seconds < GENEROUS_SECONDS


def test_nesting_limit_counts_the_top_level_as_one() -> None:
    limits = DefinitionLimits()
    # top mapping (1) > nodes (2) > a (3) > config (4) > x: 28 lists reach depth 32
    assert not check_document({"nodes": {"a": {"config": {"x": nested(28)}}}}, limits).problems
    found = check_document({"nodes": {"a": {"config": {"x": nested(29)}}}}, limits)
    assert found.blocking and [p.code for p in found.problems] == ["too_deep"]


def test_a_posted_document_larger_than_max_definition_bytes_is_refused() -> None:
    limits = DefinitionLimits(max_config_bytes=10_000_000)
    policy = DefinitionPolicy.allowing(limits=limits)
    nodes = {f"n{i}": {"config": {"blob": "x" * 2000}} for i in range(600)}  # ~1.2 MB as JSON
    report = validate_definition({"id": "big", "nodes": nodes}, policy=policy)
    assert report.codes == ["too_large"] and "MAESTRO_MAX_DEFINITION_BYTES" in report.errors[0].message
    small = {"id": "small", "nodes": {f"n{i}": {"config": {"blob": "x" * 2000}} for i in range(400)}}
    assert validate_definition(small, policy=policy).ok


def test_document_size_is_about_the_compact_json_size() -> None:
    raw = {"id": "w", "nodes": {"a": {"config": {"s": 'quote " and \\ and é', "n": [1, 2.5, None, True]}}}}
    measured = check_document(raw, DefinitionLimits()).size
    compact = len(json.dumps(raw, separators=(",", ":"), ensure_ascii=False))
    assert abs(measured - compact) <= 10, (measured, compact)


def test_aliased_values_count_every_time_they_are_stored() -> None:
    shared = "y" * 10_000
    raw = {"id": "alias", "nodes": {"a": {"metadata": {"copies": [shared] * 200}}}}  # 2 MB once stored
    report = validate_definition(raw, policy=POLICY)
    assert report.codes == ["too_large"]


def test_a_config_over_max_config_bytes_is_refused_for_its_node() -> None:
    raw = {"id": "cfg", "nodes": {"small": {"config": {"v": "x" * 100}}, "large": {"config": {"blob": "x" * 70_000}}}}
    report = validate_definition(raw, policy=POLICY)
    assert report.codes == ["too_large"]
    problem = report.errors[0]
    assert problem.node_id == "large" and problem.location == "nodes.large.config"
    assert "MAESTRO_MAX_CONFIG_BYTES=65536" in problem.message
    raised = DefinitionPolicy.allowing(limits=DefinitionLimits(max_config_bytes=100_000))
    assert validate_definition(raw, policy=raised).ok


def test_config_size_counts_utf8_bytes() -> None:
    raw = {"id": "cfg", "nodes": {"a": {"config": {"text": "é" * 40_000}}}}  # 40,000 characters, 80,000 bytes
    assert validate_definition(raw, policy=POLICY).codes == ["too_large"]


def test_values_json_cannot_store_are_named() -> None:
    recursive: dict[str, Any] = {}
    recursive["self"] = recursive
    report = validate_definition({"id": "r", "nodes": {"a": {"config": recursive}}}, policy=POLICY)
    assert report.codes == ["schema"] and "contains itself" in report.errors[0].message
    assert report.errors[0].location == "nodes.a.config.self"
    report = validate_definition({"id": "n", "nodes": {"a": {"config": {"x": math.nan}}}}, policy=POLICY)
    assert report.codes == ["schema"] and "nodes.a.config.x is nan" in report.errors[0].message
    report = validate_definition({"id": "i", "nodes": {"a": {"config": {"x": 10**5000}}}}, policy=POLICY)
    assert report.codes == ["schema"] and "integer of more than" in report.errors[0].message
    report = validate_definition({"id": "k", "nodes": {"a": {"config": {10**5000: 1}}}}, policy=POLICY)
    assert report.codes == ["schema"]


@pytest.mark.parametrize("shape", ["chain", "fan_out"])
def test_1000_conditioned_nodes_validate_quickly(shape: str) -> None:
    # 13 s before (an edge scan per ancestor step per conditioned node, and per node for dependencies)
    raw = long_chain(1000, condition=True) if shape == "chain" else wide_fan_out(999)
    policy = DefinitionPolicy.allowing(limits=DefinitionLimits(max_depth=1000))
    report, seconds = timed(raw, policy)
    assert report.ok, report.summary()[:500]
    assert seconds < GENEROUS_SECONDS


def test_3000_conditioned_nodes_validate_quickly() -> None:
    # more than 120 s before
    limits = DefinitionLimits(max_nodes=3000, max_edges=3000, max_depth=3000, max_definition_bytes=2_000_000)
    report, seconds = timed(long_chain(3000, condition=True), DefinitionPolicy.allowing(limits=limits))
    assert report.ok, report.summary()[:500]
    assert seconds < GENEROUS_SECONDS


def test_ancestry_is_still_checked_on_large_graphs() -> None:
    raw = long_chain(1000, condition=True)
    raw["nodes"]["n10"]["condition"] = "outputs['n900']['ok']"  # runs after n10
    policy = DefinitionPolicy.allowing(limits=DefinitionLimits(max_depth=1000))
    report = validate_definition(raw, policy=policy)
    assert report.codes == ["bad_condition"]
    assert report.errors[0].node_id == "n10" and "'n900', which does not run before it" in report.errors[0].message


def test_ancestry_across_a_cycle_and_dependencies_from_the_incoming_map() -> None:
    raw = {
        "id": "cyc",
        "nodes": {
            "a": {},
            "b": {"condition": "outputs['c']['ok']"},  # c precedes b through the cycle b -> c -> b
            "c": {"dependencies": ["b", "a"]},
            "d": {"condition": "outputs['b']['ok']", "dependencies": ["a"]},  # b does not precede d
        },
        "edges": [
            {"source": "a", "target": "b"},
            {"source": "b", "target": "c"},
            {"source": "c", "target": "b"},
            {"source": "a", "target": "c"},
            {"source": "a", "target": "d"},
        ],
    }
    report = validate_definition(raw, policy=POLICY)
    assert sorted(report.codes) == ["bad_condition", "cycle"], report.summary()
    cycle = next(p for p in report.errors if p.code == "cycle")
    assert "b -> c -> b" in cycle.message and cycle.node_id == "b"
    condition = next(p for p in report.errors if p.code == "bad_condition")
    assert condition.node_id == "d" and "'b', which does not run before it" in condition.message


def test_two_cycles_are_both_reported_with_their_paths() -> None:
    edges = [("a", "b"), ("b", "a"), ("c", "d"), ("d", "e"), ("e", "c"), ("b", "c")]
    raw = definition("two", {n: {} for n in "abcde"}, edges)
    messages = [p.message for p in validate_definition(raw, policy=POLICY).errors]
    assert len(messages) == 2
    assert "a -> b -> a" in messages[0] and "c -> d -> e -> c" in messages[1]
