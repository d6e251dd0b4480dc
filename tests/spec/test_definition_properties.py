"""Property-based tests (hypothesis) of validation, the loader and conditions over generated input.

Over random definitions (random graphs with cycles, unknown ends and junk edges; random fields and junk values;
random condition strings; random nested config), random YAML/JSON text and random conditions:

- validation never raises, returns within a generous bound, and reports only documented codes;
- whatever it accepts compiles into a Dagster job, every accepted condition is accepted by the runtime parser,
  and the accepted spec round-trips through storage with the same content hash;
- acyclic definitions built to be valid are accepted (and compile), a back edge is a cycle naming its path;
- an accepted condition evaluates to a bool without raising (errors become the run-time rule's input).
"""

from __future__ import annotations

import itertools
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from maestro_dagster.compiler import build_job
from maestro_dagster.compiler.conditions import evaluate_condition
from maestro_dagster.policy import DefinitionPolicy, ExecutorPolicy
from maestro_dagster.spec import PROBLEM_CODES, WorkflowSpec, analyse_condition, validate_definition, validate_loaded
from maestro_dagster.spec.conditions import parse_condition
from maestro_dagster.spec.loader import parse_json_text, parse_yaml_text

# Hypothesis' caches go to a temporary directory, not into the checkout
_HOME = tempfile.TemporaryDirectory(prefix="maestro-hypothesis-")
set_hypothesis_home_dir(_HOME.name)

POLICY = DefinitionPolicy.allowing()
EXECUTORS = ExecutorPolicy.allowing()
BOUND_SECONDS = 10  # per example, on two shared cores: a guard against blow-ups, not a performance goal
# modest counts keep the file a few seconds; no example database (nothing written into the checkout)
SETTINGS = settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# ---- strategies ------------------------------------------------------------------------------------
IDS = st.sampled_from(["a", "b", "c", "d", "e", "f_1", "g-2"]) | st.sampled_from(["bad id", "", "x" * 300, "é", "A"])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.integers(-(2**200), 2**200)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=16,
)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


DEEP = st.integers(0, 45).map(nested)
JUNK = JSON | DEEP

ATOMS = [
    "outputs['a']", "outputs['b']['x']", "outputs.get('c', {}).get('k', 0)", "global_context.get('env')", "1", "2**10",
    "'s'", "True", "None", "[1, 2]", "{'k': 1}", "len(outputs)", "x", "__import__('os')", "(lambda: 1)",
    "[i for i in outputs]", "outputs['a'].keys()", "'a'.center(5)", "9**9999", "'ab' * 3", "round(1.5)", "max(1, 2)",
    "outputs['a']._x", "f'{1}'", "(y := 2)", "outputs['a'][1:2]",
]  # fmt: skip
OPS = [" and ", " or ", " == ", " != ", " + ", " - ", " * ", " ** ", " < ", " in ", " % ", " // ", " << "]
CONDITIONS = st.recursive(
    st.sampled_from(ATOMS),
    lambda inner: (
        st.tuples(inner, st.sampled_from(OPS), inner).map(lambda t: f"({t[0]}{t[1]}{t[2]})")
        | inner.map(lambda x: f"not {x}")
        | inner.map(lambda x: f"{x} if {x} else {x}")
    ),
    max_leaves=10,
) | st.text(max_size=40)

RETRY = st.fixed_dictionaries(
    {},
    optional={
        "max_attempts": st.integers(-2, 200),
        "retry_delay_seconds": st.floats(allow_nan=True) | st.integers(-5, 100_000),
        "retry_on_failure": st.booleans(),
        "exponential_backoff": st.booleans(),
        "surprise": JSON,
    },
)
EXECUTOR_NAMES = ["noop", "phase", "human_review", "command", "http", "sql", "json:dumps", "os:system", "nope"]
NODE = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["phase", "custom", "conditional", "human_review", "parallel_group", "bogus"]) | JUNK,
        "executor": st.sampled_from(EXECUTOR_NAMES) | JUNK,
        "config": st.dictionaries(st.text(max_size=6), JSON, max_size=3) | JUNK,
        "condition": CONDITIONS | JUNK,
        "timeout_seconds": st.floats(allow_nan=True) | st.integers(-5, 100) | JUNK,
        "retry_policy": RETRY | JUNK,
        "dependencies": st.lists(IDS, max_size=4) | JUNK,
        "metadata": st.dictionaries(st.text(max_size=6), JSON, max_size=3) | JUNK,
        "name": st.text(max_size=10) | JUNK,
        "quality_threshold": st.floats(-1, 2) | JUNK,
        "execution_mode": st.sampled_from(["sequential", "parallel", "conditional", "other"]),
        "bogus_field": JSON,
    },
)
EDGE = st.fixed_dictionaries({"source": IDS | JUNK, "target": IDS | JUNK}, optional={"condition": CONDITIONS}) | JUNK
DEFAULTS = st.fixed_dictionaries(
    {},
    optional={
        "on_condition_error": st.sampled_from(["run", "skip", "fail", "bogus"]) | JUNK,
        "timeout_seconds": st.floats(allow_nan=True) | JUNK,
        "retry_policy": RETRY | JUNK,
    },
)
SCHEDULE = st.fixed_dictionaries(
    {"cron": st.sampled_from(["0 2 * * *", "*/5 * * * *", "every day", ""]) | JUNK},
    optional={"timezone": st.sampled_from(["UTC", "Europe/Paris", "Mars/Base"]) | JUNK, "name": IDS | JUNK},
)
SENSOR = st.fixed_dictionaries(
    {"type": st.sampled_from(["file", "workflow_completed", "request_queue", "bogus"]) | JUNK},
    optional={"name": IDS | JUNK, "workflow_id": IDS | JUNK, "directory": st.text(max_size=8), "batch_size": JSON},
)
DEFINITIONS = st.fixed_dictionaries(
    {"id": st.sampled_from(["w", "bad id!", ""]) | JUNK, "nodes": st.dictionaries(IDS, NODE | JUNK, max_size=7) | JUNK},
    optional={
        "edges": st.lists(EDGE, max_size=12) | JUNK,
        "defaults": DEFAULTS | JUNK,
        "name": st.text(max_size=10) | JUNK,
        "workflow_type": st.sampled_from(["linear", "parallel", "custom", "zigzag"]),
        "schedules": st.lists(SCHEDULE, max_size=2) | JUNK,
        "sensors": st.lists(SENSOR, max_size=2) | JUNK,
        "metadata": JSON,
        "surprise": JSON,
    },
)
DOCUMENTS = DEFINITIONS | JUNK


@st.composite
def dags(draw: st.DrawFn) -> dict[str, Any]:
    """A definition valid by construction: edges only forward, conditions reading direct parents."""
    count = draw(st.integers(1, 8))
    ids = [f"n{i}" for i in range(count)]
    edges = sorted(
        {(s, t) for t in range(1, count) for s in draw(st.lists(st.integers(0, t - 1), max_size=3, unique=True))}
    )
    parents: dict[int, list[int]] = {}
    for s, t in edges:
        parents.setdefault(t, []).append(s)
    nodes: dict[str, Any] = {}
    for i, node_id in enumerate(ids):
        node: dict[str, Any] = {
            "executor": draw(st.sampled_from(["noop", "phase", "human_review"])),
            "config": draw(
                st.dictionaries(st.text("abc", min_size=1, max_size=3), st.integers() | st.text(), max_size=2)
            ),
        }
        if i in parents and draw(st.booleans()):
            ref = ids[draw(st.sampled_from(parents[i]))]
            node["condition"] = draw(
                st.sampled_from(
                    [
                        f"outputs['{ref}'].get('ok', True)",
                        f"outputs.get('{ref}', {{}}).get('n', 0) > 1 or global_context.get('env') == 'prod'",
                        f"len(outputs['{ref}']) > 0 and not outputs['{ref}'].get('skip', False)",
                    ]
                )
            )
        if draw(st.booleans()):
            node["dependencies"] = [ids[p] for p in parents.get(i, [])]
        nodes[node_id] = node
    raw: dict[str, Any] = {
        "id": "dag",
        "nodes": nodes,
        "edges": [{"source": ids[s], "target": ids[t]} for s, t in edges],
        "defaults": {"on_condition_error": draw(st.sampled_from(["run", "skip", "fail"]))},
    }
    return raw


# ---- properties ------------------------------------------------------------------------------------
def validated(raw: Any):
    started = time.perf_counter()
    report = validate_definition(raw, policy=POLICY)
    assert time.perf_counter() - started < BOUND_SECONDS
    for problem in report.errors:
        assert problem.code in PROBLEM_CODES, problem
        assert "\n" not in str(problem)
    json.dumps(report.to_dict())
    return report


def assert_accepted_compiles(spec: WorkflowSpec) -> None:
    job = build_job(spec, executors=EXECUTORS)
    assert len(job.nodes_in_topological_order) == len(spec.nodes)
    for node in spec.nodes.values():
        if node.condition:
            assert parse_condition(node.condition).tree is not None, node.condition
    assert WorkflowSpec.from_storage(json.loads(json.dumps(spec.to_storage()))).content_hash() == spec.content_hash()


@SETTINGS
@given(DOCUMENTS)
def test_validation_never_raises_and_what_it_accepts_compiles(raw: Any) -> None:
    report = validated(raw)
    assert report.ok == (report.spec is not None)
    if report.ok:
        assert_accepted_compiles(report.spec)


@SETTINGS
@given(dags())
def test_valid_by_construction_definitions_are_accepted_and_compile(raw: dict[str, Any]) -> None:
    report = validated(raw)
    assert report.ok, report.summary()
    assert_accepted_compiles(report.spec)


@SETTINGS
@given(dags(), st.data())
def test_a_back_edge_is_a_cycle_naming_its_path(raw: dict[str, Any], data: st.DataObject) -> None:
    ids = list(raw["nodes"])
    if len(ids) < 2:
        return
    target = data.draw(st.integers(0, len(ids) - 2))
    raw["edges"] += [{"source": ids[i], "target": ids[i + 1]} for i in range(target, len(ids) - 1)]
    raw["edges"].append({"source": ids[-1], "target": ids[target]})
    for node in raw["nodes"].values():
        node.pop("dependencies", None)
    report = validated(raw)
    cycles = [p for p in report.errors if p.code == "cycle"]
    assert len(cycles) == 1, report.summary()
    path = cycles[0].message.split("cycle: ")[1].split(": ")[0].split(" -> ")
    assert path[0] == path[-1] and len(path) >= 3
    pairs = {(e["source"], e["target"]) for e in raw["edges"]}
    assert all((a, b) in pairs for a, b in itertools.pairwise(path))


@SETTINGS
@given(st.text(max_size=300) | JSON.map(lambda v: yaml.safe_dump(v)) | DEEP.map(json.dumps))
def test_the_loader_never_raises_on_text(text: str) -> None:
    for parse, name in ((parse_yaml_text, "t.yaml"), (parse_json_text, "t.json")):
        loaded = parse(text, Path(name))
        assert all(p.code in PROBLEM_CODES for p in loaded.problems)
        report = validate_loaded(loaded, POLICY)
        assert all(p.code in PROBLEM_CODES for p in report.errors)


@SETTINGS
@given(dags())
def test_a_definition_reads_the_same_from_yaml_json_and_a_dict(raw: dict[str, Any]) -> None:
    from_dict = validated(raw)
    from_yaml = validate_loaded(parse_yaml_text(yaml.safe_dump(raw, sort_keys=False), Path("d.yaml")), POLICY)
    from_json = validate_loaded(parse_json_text(json.dumps(raw), Path("d.json")), POLICY)
    assert from_dict.ok and from_yaml.ok and from_json.ok, (from_yaml.summary(), from_json.summary())
    assert from_dict.spec.content_hash() == from_yaml.spec.content_hash() == from_json.spec.content_hash()


OUTPUTS = {"a": {"x": 1, "k": "v"}, "b": {"x": [1, 2]}, "c": {"k": 3}}


@settings(max_examples=100, deadline=None, database=None)
@given(CONDITIONS)
def test_an_accepted_condition_evaluates_to_a_bool_within_the_bounds(expression: str) -> None:
    info = analyse_condition(expression)
    if info.error is not None:
        value, error = evaluate_condition(expression, OUTPUTS, {"env": "prod"})
        assert value is True and error is not None and error.startswith("refused")
        return
    started = time.perf_counter()
    value, error = evaluate_condition(expression, OUTPUTS, {"env": "prod"}, timeout_seconds=BOUND_SECONDS)
    assert time.perf_counter() - started < BOUND_SECONDS
    assert isinstance(value, bool) and (error is None or value is True)
