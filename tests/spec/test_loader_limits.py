"""The definition file loader under hostile input: alias bombs, deep nesting, huge files and scalars are named
problems found before anything is built, never a traceback, a hang or a memory blow-up."""

from __future__ import annotations

import json
import time
from pathlib import Path

import yaml

from maestro_dagster.policy import DefinitionLimits, DefinitionPolicy
from maestro_dagster.spec import load_definition_file, validate_file
from maestro_dagster.spec.loader import parse_json_text, parse_yaml_text

POLICY = DefinitionPolicy.allowing()
GENEROUS_SECONDS = 10

# 9 levels of 9 aliases: 9**9 (387 million) strings once expanded; under 500 bytes of text
BILLION_LAUGHS = (
    "id: lol\nl0: &l0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
    + "".join(f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 9))
    + "nodes: {n: {config: {x: *l8}}}\n"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_billion_laughs_is_refused_by_the_alias_budget_before_construction(tmp_path: Path, monkeypatch) -> None:
    assert len(BILLION_LAUGHS.encode()) < 500
    path = write(tmp_path, "lol.yaml", BILLION_LAUGHS)
    constructed: list[object] = []
    original = yaml.constructor.BaseConstructor.construct_document

    def spy(self, node):
        constructed.append(node)
        return original(self, node)

    monkeypatch.setattr(yaml.constructor.BaseConstructor, "construct_document", spy)
    started = time.perf_counter()
    report = validate_file(path, POLICY)
    assert time.perf_counter() - started < GENEROUS_SECONDS  # 112 s and 612 MB before
    assert report.codes == ["yaml_alias_budget"]
    problem = report.errors[0]
    assert "MAESTRO_MAX_YAML_VALUES=200000" in problem.message and problem.line is not None
    assert report.workflow_id == "lol"  # best effort, from the text
    assert constructed == []  # refused on the composed tree: nothing was built


def test_the_alias_budget_is_a_setting(tmp_path: Path) -> None:
    text = "id: a\nx: &x [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\ny: [*x, *x, *x, *x, *x, *x, *x, *x, *x, *x]\nnodes: {n: {}}\n"
    path = write(tmp_path, "a.yaml", text)
    assert load_definition_file(path).problems == []
    tight = load_definition_file(path, DefinitionLimits(max_yaml_values=100))
    assert [p.code for p in tight.problems] == ["yaml_alias_budget"] and tight.data is None


def test_many_plain_values_count_against_the_budget_while_composing(tmp_path: Path) -> None:
    path = write(tmp_path, "many.yaml", "id: m\nnodes: {n: {config: {x: [" + ", ".join(["1"] * 300) + "]}}}\n")
    loaded = load_definition_file(path, DefinitionLimits(max_yaml_values=200))
    assert [p.code for p in loaded.problems] == ["yaml_alias_budget"]


def test_5000_nested_brackets_in_yaml_are_too_deep_not_a_recursion_error(tmp_path: Path) -> None:
    path = write(tmp_path, "deep.yaml", "id: deep\nnodes: {n: {config: {x: " + "[" * 5000 + "]" * 5000 + "}}}\n")
    report = validate_file(path, POLICY)
    assert report.codes == ["too_deep"]
    assert "MAESTRO_MAX_NESTING=32" in report.errors[0].message and report.errors[0].line == 2


def test_5000_nested_brackets_in_json_are_too_deep(tmp_path: Path) -> None:
    path = write(
        tmp_path, "deep.json", '{"id": "deep", "nodes": {"n": {"config": {"x": ' + "[" * 5000 + "]" * 5000 + "}}}}"
    )
    report = validate_file(path, POLICY)
    assert report.codes == ["too_deep"] and report.workflow_id == "deep"
    # deeper than json's own guard: its RecursionError is caught too
    text = '{"id": "deeper", "x": ' + "[" * 200_000 + "]" * 200_000 + "}"
    loaded = parse_json_text(text, Path("deeper.json"), DefinitionLimits(max_definition_bytes=1_000_000))
    assert [p.code for p in loaded.problems] == ["too_deep"]


def test_json_just_past_the_nesting_limit_is_refused_and_at_it_accepted(tmp_path: Path) -> None:
    # top (1) > nodes (2) > n (3) > config (4) > x: lists from depth 5
    ok = '{"id": "j", "nodes": {"n": {"config": {"x": ' + "[" * 28 + "]" * 28 + "}}}}"
    assert validate_file(write(tmp_path, "ok.json", ok), POLICY).ok
    bad = '{"id": "j", "nodes": {"n": {"config": {"x": ' + "[" * 29 + "]" * 29 + "}}}}"
    assert validate_file(write(tmp_path, "bad.json", bad), POLICY).codes == ["too_deep"]


def test_aliases_cannot_nest_deeper_than_the_limit(tmp_path: Path) -> None:
    # each anchor is 20 levels deep; using one inside the next doubles the depth of what is built
    inner = "[" * 20 + "1" + "]" * 20
    text = f"id: a\nx: &x {inner}\ny: &y {'[' * 19}*x{']' * 19}\nnodes: {{n: {{config: {{v: *y}}}}}}\n"
    report = validate_file(write(tmp_path, "alias_depth.yaml", text), POLICY)
    assert report.codes == ["too_deep"]


def test_a_chain_of_merge_keys_is_too_deep_not_a_recursion_error(tmp_path: Path) -> None:
    lines = ["id: merge", "m0: &m0 {k: 1}"]
    lines += [f"m{i}: &m{i} {{<<: *m{i - 1}, k{i}: {i}}}" for i in range(1, 1200)]
    lines.append("nodes: {n: {config: *m1199}}")
    report = validate_file(write(tmp_path, "merge.yaml", "\n".join(lines) + "\n"), POLICY)
    assert report.codes == ["too_deep"]


def test_a_recursive_alias_is_named(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, "rec.yaml", "id: r\nnodes: {n: {config: &x {a: *x}}}\n"), POLICY)
    assert report.codes == ["schema"]
    assert "contains itself" in report.errors[0].message and report.errors[0].line == 2


def test_a_file_over_max_definition_bytes_is_refused_unparsed(tmp_path: Path) -> None:
    path = write(tmp_path, "big.yaml", "id: big\nnodes: {n: {}}\n# " + "x" * 1_100_000 + "\n")
    report = validate_file(path, POLICY)
    assert report.codes == ["too_large"] and "MAESTRO_MAX_DEFINITION_BYTES=1048576" in report.errors[0].message
    assert report.workflow_id == "big" or report.workflow_id is None
    raised = DefinitionPolicy.allowing(limits=DefinitionLimits(max_definition_bytes=2_000_000))
    assert validate_file(path, raised).ok
    assert [p.code for p in parse_yaml_text(path.read_text(), path).problems] == ["too_large"]


def test_a_long_base60_integer_is_refused_not_computed(tmp_path: Path) -> None:
    # YAML 1.1 reads 1:2:3 as a base-60 integer; 100,000 parts would take minutes (quadratic big-int)
    path = write(tmp_path, "b60.yaml", "id: b\nnodes: {n: {config: {x: " + ":".join(["1"] * 100_000) + "}}}\n")
    started = time.perf_counter()
    report = validate_file(path, POLICY)
    assert report.codes == ["syntax"] and "base-60" in report.errors[0].message
    assert time.perf_counter() - started < GENEROUS_SECONDS
    ok = validate_file(write(tmp_path, "time.yaml", "id: t\nnodes: {n: {config: {x: 1:30:00}}}\n"), POLICY)
    assert ok.ok and ok.spec is not None and ok.spec.nodes["n"].config["x"] == 5400


def test_unbuildable_scalars_are_syntax_problems(tmp_path: Path) -> None:
    report = validate_file(
        write(tmp_path, "int.yaml", "id: i\nnodes: {n: {config: {x: " + "9" * 5000 + "}}}\n"), POLICY
    )
    assert report.codes == ["syntax"]
    report = validate_file(
        write(tmp_path, "int.json", '{"id": "i", "nodes": {"n": {"x": ' + "9" * 5000 + "}}}"), POLICY
    )
    assert report.codes == ["syntax"]


def test_lines_and_duplicates_survive_the_iterative_walk(tmp_path: Path) -> None:
    text = "id: w\nbase: &b {x: 1, x: 2}\nnodes:\n  a:\n    config: *b\n  b:\n    config: {<<: *b, y: 3}\n"
    loaded = load_definition_file(write(tmp_path, "lines.yaml", text))
    assert loaded.lines["nodes.a.config"] == 5 and loaded.lines["nodes.b.config.y"] == 7
    # the aliased mapping's duplicate is reported where it is written and where it is used, innermost first
    assert [(d.parent, d.key) for d in loaded.duplicate_keys] == [("base", "x"), ("nodes.a.config", "x")]


def test_a_deep_document_that_is_also_a_valid_definition_loads(tmp_path: Path) -> None:
    value = json.dumps({"k": [[[[{"deep": True}]]]]})
    report = validate_file(write(tmp_path, "fine.yaml", f"id: fine\nnodes: {{n: {{config: {value}}}}}\n"), POLICY)
    assert report.ok, report.summary()
