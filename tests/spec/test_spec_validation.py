"""Workflow definition spec: models, validation (every problem, with its code and node), loader, schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from maestro_dagster.errors import DefinitionError
from maestro_dagster.policy import DefinitionPolicy
from maestro_dagster.spec import (
    BUILTIN_EXECUTORS,
    SCHEMA_PATH,
    RetryPolicySpec,
    WorkflowSpec,
    analyse_condition,
    is_module_allowed,
    iter_definition_files,
    load_definition_file,
    parse_definition,
    render_schema,
    validate_definition,
    validate_file,
)
from maestro_dagster.spec.__main__ import main as schema_main

DEFS = Path(__file__).resolve().parent.parent / "fixtures" / "defs"
VALID = DEFS / "valid"
INVALID = DEFS / "invalid"
# "json" stands in for an allowlisted module that exists (json:no_such_function is an unknown executor).
ALLOW = ("maestro_dagster.executors", "maestro_examples", "json")

SDLC = ["req", "design", "backend", "frontend", "testing", "review"]
PHASE_IDS = {
    "req": "phase_requirement_analysis",
    "design": "phase_design",
    "backend": "phase_backend_development",
    "frontend": "phase_frontend_development",
    "testing": "phase_testing",
    "review": "phase_review",
}


def check(name: str):
    return validate_file(INVALID / name, DefinitionPolicy.allowing(*ALLOW))


def load_spec(name: str) -> WorkflowSpec:
    report = validate_file(VALID / name, DefinitionPolicy.allowing(*ALLOW))
    assert report.ok, report.summary()
    assert report.spec is not None
    return report.spec


# ---- invalid fixtures: one problem each ------------------------------------------------------------
# file -> (code, node_id, fragments the message must contain)
INVALID_CASES: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "cycle.yaml": ("cycle", "a", ("a -> b -> c -> a",)),
    "unknown_edge_source.yaml": ("unknown_edge_node", None, ("edges[0]", "'ghost'", "fix the edge source")),
    "unknown_edge_target.yaml": ("unknown_edge_node", None, ("edges[0]", "'phase_desgn'", "add a node")),
    "duplicate_node_id.yaml": ("duplicate_id", "build", ("'build'", "lines 3, 6")),
    "duplicate_node_id.json": ("duplicate_id", "build", ("'build'",)),
    "dependency_mismatch.yaml": ("dependency_mismatch", "c", ("'c'", "['a']", "['a', 'b']")),
    "max_attempts_zero.yaml": ("invalid_retry", "fetch", ("'fetch'", "max_attempts", "1 to 100")),
    "negative_delay.yaml": ("invalid_retry", "fetch", ("'fetch'", "retry_delay_seconds", "-5")),
    "unknown_executor_shell.yaml": ("unknown_executor", "run_script", ("'run_script'", "'shell'", "command")),
    "executor_not_allowed.yaml": ("executor_not_allowed", "pwn", ("'pwn'", "os:system", "MAESTRO_EXECUTOR_ALLOWLIST")),
    "executor_prefix_lookalike.yaml": ("executor_not_allowed", "sneaky", ("maestro_examples_evil:run",)),
    "executor_missing_function.yaml": ("unknown_executor", "encode", ("'encode'", "no_such_function")),
    "condition_syntax.yaml": ("bad_condition", "gated", ("'gated'", "does not parse")),
    "condition_forbidden_name.yaml": ("bad_condition", "gated", ("'gated'", "'__import__'")),
    "condition_unknown_output.yaml": ("bad_condition", "gated", ("'gated'", "'frist'")),
    "bad_workflow_id.yaml": ("bad_id", None, ("'bad id!'",)),
    "bad_node_id.yaml": ("bad_id", "phase design", ("'phase design'",)),
    "unknown_top_level_field.yaml": ("schema", None, ("'node'", "allowed fields")),
    "unknown_node_field.yaml": ("schema", "build", ("'build'", "'exector'", "executor")),
    "empty_nodes.yaml": ("empty", None, ("no nodes",)),
    "bad_cron.yaml": ("bad_cron", None, ("schedule 1", "every day at 2")),
    "bad_timezone.yaml": ("bad_timezone", None, ("schedule 0", "Mars/Olympus_Mons")),
    "self_loop.yaml": ("self_loop", "again", ("edges[0]", "'again'")),
    "duplicate_edge.yaml": ("duplicate_edge", None, ("edges[1]", "edges[0]")),
    "edge_condition.yaml": ("edge_condition", None, ("edges[0]", "target node")),
    "command_without_args.yaml": ("bad_config", "run", ("'run'", "config.args")),
    "yaml_syntax_error.yaml": ("syntax", None, ("not valid YAML", "line")),
}


@pytest.mark.parametrize("name", sorted(INVALID_CASES))
def test_invalid_fixture_reports_its_problem(name: str) -> None:
    code, node_id, fragments = INVALID_CASES[name]
    report = check(name)
    assert not report.ok
    assert report.spec is None
    assert report.codes == [code], report.summary()
    problem = report.errors[0]
    assert problem.node_id == node_id
    for fragment in fragments:
        assert fragment in problem.message, problem.message
    assert "\n" not in str(problem)
    assert report.source == str(INVALID / name)


def test_every_invalid_fixture_has_an_expectation() -> None:
    names = {p.name for p in iter_definition_files(INVALID)}
    assert names - {"many_problems.yaml"} == set(INVALID_CASES)
    assert len(INVALID_CASES) >= 15


def test_all_problems_are_reported_at_once() -> None:
    report = check("many_problems.yaml")
    by_code = {p.code: p for p in report.errors}
    assert set(by_code) == {
        "invalid_retry",
        "unknown_executor",
        "bad_condition",
        "executor_not_allowed",
        "cycle",
        "unknown_edge_node",
        "dependency_mismatch",
    }, report.summary()
    assert by_code["invalid_retry"].node_id == "a"
    assert by_code["unknown_executor"].node_id == "b"
    assert by_code["executor_not_allowed"].node_id == "d"
    assert by_code["bad_condition"].node_id == "c"
    assert "a -> b -> c -> a" in by_code["cycle"].message
    assert "'nowhere'" in by_code["unknown_edge_node"].message
    assert report.workflow_id == "many_problems"
    assert all(p.line is not None for p in report.errors)


def test_problems_carry_yaml_lines() -> None:
    report = check("max_attempts_zero.yaml")
    assert report.errors[0].line == 5
    assert report.errors[0].location == "nodes.fetch.retry_policy.max_attempts"
    assert "(line 5)" in str(report.errors[0])


def test_syntax_error_keeps_best_effort_id_and_position() -> None:
    report = check("yaml_syntax_error.yaml")
    assert report.workflow_id == "yaml_syntax_error"
    assert report.errors[0].line is not None
    assert "column" in report.errors[0].message


def test_workflow_id_is_reported_even_when_invalid() -> None:
    assert check("cycle.yaml").workflow_id == "cycle"
    assert check("bad_workflow_id.yaml").workflow_id == "bad id!"


def test_graph_checks_run_even_when_a_node_fails_schema() -> None:
    raw = {
        "id": "w",
        "nodes": {"a": {"retry_policy": {"max_attempts": "many"}}, "b": None},
        "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "a"}, {"source": "a", "target": "x"}],
    }
    report = validate_definition(raw, policy=DefinitionPolicy.allowing(*ALLOW))
    assert {"invalid_retry", "schema", "cycle", "unknown_edge_node"} <= set(report.codes)
    assert next(p for p in report.errors if p.code == "schema").node_id == "b"


def test_name_collisions_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from maestro_dagster import names

    monkeypatch.setattr(names, "dagster_name", lambda maestro_id: "same")
    report = validate_definition({"id": "w", "nodes": {"a": {}, "b": {}}}, policy=DefinitionPolicy.allowing())
    assert report.codes == ["name_collision"] and "'a', 'b'" in report.errors[0].message


def test_never_raises_for_garbage() -> None:
    for raw in (None, [], "text", 3, {"nodes": [1, 2]}, {"id": 5, "nodes": {1: {}}, "edges": "x"}):
        report = validate_definition(raw, policy=DefinitionPolicy.allowing(*ALLOW))
        assert not report.ok and report.errors


# ---- executors and conditions ----------------------------------------------------------------------
def test_executor_allowlist_matches_at_dot_boundary() -> None:
    assert is_module_allowed("maestro_examples.x", ["maestro_examples"])
    assert is_module_allowed("maestro_examples", ["maestro_examples"])
    assert not is_module_allowed("maestro_examples_evil", ["maestro_examples"])
    assert is_module_allowed("a.b.c", [" x ", "a.b."])
    assert not is_module_allowed("a.b.c", [])


def test_custom_executor_must_be_callable_and_import_check_can_be_skipped() -> None:
    def definition(executor: str) -> dict:
        return {"id": "w", "nodes": {"n": {"executor": executor}}}

    assert validate_definition(definition("json:dumps"), policy=DefinitionPolicy.allowing(*ALLOW)).ok
    report = validate_definition(definition("json:__name__"), policy=DefinitionPolicy.allowing(*ALLOW))
    assert report.codes == ["unknown_executor"]
    report = validate_definition(
        definition("maestro_examples.no_such_module:run"), policy=DefinitionPolicy.allowing(*ALLOW)
    )
    assert report.codes == ["unknown_executor"] and "cannot be imported" in report.errors[0].message
    skipped = validate_definition(
        definition("maestro_examples.no_such_module:run"), policy=DefinitionPolicy.allowing(*ALLOW), check_imports=False
    )
    assert skipped.ok
    assert validate_definition(
        definition("os:system"), policy=DefinitionPolicy.allowing(*ALLOW), check_imports=False
    ).codes == ["executor_not_allowed"]


@pytest.mark.parametrize(
    ("config", "ok"),
    [
        ({"args": ["echo", "hi"]}, True),
        ({"args": []}, False),
        ({"args": "echo hi"}, False),
        ({"command": "echo hi | wc", "shell": True}, True),
        ({"command": "echo hi"}, False),
    ],
)
def test_command_config(config: dict, ok: bool) -> None:
    raw = {"id": "w", "nodes": {"n": {"executor": "command", "config": config}}}
    assert validate_definition(raw, policy=DefinitionPolicy.allowing()).ok is ok


def test_http_and_sql_config() -> None:
    raw = {"id": "w", "nodes": {"h": {"executor": "http"}, "s": {"executor": "sql", "config": {"statement": "x"}}}}
    report = validate_definition(raw, policy=DefinitionPolicy.allowing())
    assert report.codes == ["bad_config", "bad_config"]
    assert "config.url" in report.errors[0].message
    assert "config.connection" in report.errors[1].message


@pytest.mark.parametrize(
    ("expression", "error_fragment"),
    [
        ("outputs['a']['ok'] and global_context.get('env') == 'prod'", None),
        ("len(outputs) > 0 and max(1, 2) == 2", None),
        ("all([outputs['a']['score'] > 0, outputs['a'].get('ok', True)])", None),
        ("all(x > 0 for x in outputs['a']['scores'])", "generator expression"),
        ("outputs['a'].__class__", "'__class__'"),
        ("outputs['a']._private", "'_private'"),
        ("open('/etc/passwd')", "'open'"),
        ("(lambda: 1)()", "lambda"),
        ("(x := 1)", "assignment"),
        ("outputs[", "does not parse"),
    ],
)
def test_condition_analysis(expression: str, error_fragment: str | None) -> None:
    info = analyse_condition(expression)
    if error_fragment is None:
        assert info.error is None
    else:
        assert info.error is not None and error_fragment in info.error


def test_condition_output_references() -> None:
    assert analyse_condition("outputs['a']['x'] or outputs.get('b')").output_refs == ("a", "b")
    raw = {"id": "w", "nodes": {"a": {}, "b": {"condition": "outputs['a']"}}}
    report = validate_definition(raw, policy=DefinitionPolicy.allowing())
    assert report.codes == ["bad_condition"] and "does not run before" in report.errors[0].message


# ---- valid fixtures and helpers --------------------------------------------------------------------
def test_every_valid_fixture_validates() -> None:
    files = iter_definition_files(VALID)
    assert len(files) >= 7
    for path in files:
        report = validate_file(path, DefinitionPolicy.allowing(*ALLOW))
        assert report.ok, report.summary()
        assert report.spec is not None and report.workflow_id == report.spec.id
        # only built-in executors: valid under any allowlist
        assert validate_file(path, DefinitionPolicy.allowing()).ok


def test_parallel_sdlc_generations_match_the_original() -> None:
    spec = load_spec("sdlc_parallel.yaml")
    expected = [["req"], ["design"], ["backend", "frontend"], ["testing"], ["review"]]
    assert spec.topological_generations() == [[PHASE_IDS[n] for n in group] for group in expected]
    assert spec.node_ids == [PHASE_IDS[n] for n in SDLC]
    assert spec.ancestors("phase_testing") == {PHASE_IDS[n] for n in ("req", "design", "backend", "frontend")}
    assert spec.ancestors("phase_requirement_analysis") == set()
    assert spec.upstream("phase_testing") == ["phase_backend_development", "phase_frontend_development"]
    assert spec.downstream("phase_design") == ["phase_backend_development", "phase_frontend_development"]
    assert spec.nodes["phase_design"].name == "design"
    assert spec.nodes["phase_design"].executor_ref == "phase"


def test_linear_and_other_shapes() -> None:
    linear = load_spec("sdlc_linear.yaml")
    assert [len(g) for g in linear.topological_generations()] == [1] * 6
    assert load_spec("diamond.yaml").topological_generations() == [["start"], ["left", "right"], ["finish"]]
    fan = load_spec("fan_out_fan_in.yaml")
    assert fan.topological_generations() == [["split"], ["worker-1", "worker-2", "worker-3", "worker-4"], ["join"]]
    single = load_spec("single_node.yaml")
    assert single.topological_generations() == [["say_hello"]]
    assert single.name == "hello" and single.nodes["say_hello"].name == "say_hello"


def test_schedules_and_defaults() -> None:
    spec = load_spec("with_schedules.yaml")
    assert [s.cron for s in spec.schedules] == ["0 2 * * *", "*/15 * * * *"]
    assert spec.schedules[0].timezone == "Europe/Paris" and spec.schedules[0].enabled
    assert spec.schedules[1].timezone == "UTC" and not spec.schedules[1].enabled


def test_retry_and_timeout_resolution() -> None:
    spec = load_spec("with_retry.yaml")
    download = spec.effective_retry("download")
    assert download == RetryPolicySpec(
        max_attempts=5, retry_delay_seconds=2.5, retry_on_failure=True, exponential_backoff=True
    )
    assert download.retries_enabled
    assert spec.effective_retry("unpack").max_attempts == 2
    assert spec.effective_timeout("download") == 60
    assert spec.effective_timeout("unpack") == 3600
    assert spec.nodes["review"].executor_ref == "human_review"
    bare = load_spec("single_node.yaml")
    assert bare.effective_retry("say_hello") == RetryPolicySpec()
    assert not RetryPolicySpec(max_attempts=3).retries_enabled
    assert bare.effective_timeout("say_hello") is None


def test_executor_ref_defaults() -> None:
    spec = load_spec("with_condition.yaml")
    assert spec.nodes["notify"].executor_ref == "noop"
    assert spec.nodes["phase_backend_development"].condition is not None
    assert set(BUILTIN_EXECUTORS) == {"noop", "command", "http", "sql", "phase", "human_review"}


def test_cycle_helper_raises_definition_error() -> None:
    spec = WorkflowSpec.model_validate(
        {
            "id": "c",
            "nodes": {"a": {}, "b": {}},
            "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "a"}],
        }
    )
    with pytest.raises(DefinitionError):
        spec.topological_generations()
    with pytest.raises(KeyError):
        spec.upstream("missing")


def test_content_hash_is_stable_under_reordering_and_changes_with_content() -> None:
    raw = yaml.safe_load((VALID / "sdlc_parallel.yaml").read_text())
    spec = parse_definition(raw, policy=DefinitionPolicy.allowing(*ALLOW))
    reordered = {key: raw[key] for key in reversed(list(raw))}
    reordered["nodes"] = {
        node_id: {k: node[k] for k in reversed(list(node))} for node_id, node in reversed(list(raw["nodes"].items()))
    }
    as_json = json.loads(json.dumps(reordered, indent=4))
    assert parse_definition(as_json, policy=DefinitionPolicy.allowing(*ALLOW)).content_hash() == spec.content_hash()
    restored = WorkflowSpec.from_storage(json.loads(json.dumps(spec.to_storage())))
    assert restored.content_hash() == spec.content_hash()
    assert restored.node_ids == spec.node_ids

    changed = json.loads(json.dumps(raw))
    changed["nodes"]["phase_review"]["config"]["phase"] = "final_review"
    assert parse_definition(changed, policy=DefinitionPolicy.allowing(*ALLOW)).content_hash() != spec.content_hash()
    assert len(spec.content_hash()) == 64


def test_parse_definition_raises_with_every_problem() -> None:
    raw = yaml.safe_load((INVALID / "many_problems.yaml").read_text())
    with pytest.raises(DefinitionError) as caught:
        parse_definition(raw, policy=DefinitionPolicy.allowing(*ALLOW), source="api")
    errors = caught.value.details["errors"]
    assert len(errors) == 7 and {e["code"] for e in errors} >= {"cycle", "invalid_retry"}
    assert "many_problems" in caught.value.message and "[cycle]" in caught.value.message


def test_report_to_dict() -> None:
    ok = validate_file(VALID / "diamond.yaml", DefinitionPolicy.allowing(*ALLOW)).to_dict()
    assert ok["ok"] and ok["errors"] == [] and len(ok["content_hash"]) == 64
    bad = check("cycle.yaml").to_dict()
    assert not bad["ok"] and bad["errors"][0]["code"] == "cycle" and bad["content_hash"] is None
    json.dumps(bad)


# ---- loader ----------------------------------------------------------------------------------------
def test_loader_records_duplicate_keys_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("id: w\nid: w2\nnodes:\n  a:\n    config: {x: 1, x: 2}\n")
    loaded = load_definition_file(path)
    assert [(d.parent, d.key, d.lines) for d in loaded.duplicate_keys] == [
        ("nodes.a.config", "x", (5, 5)),
        ("", "id", (1, 2)),
    ]
    report = validate_file(path, DefinitionPolicy.allowing(*ALLOW))
    assert sorted(report.codes) == ["duplicate_key", "duplicate_key"]


def test_loader_unsupported_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text("id: b\nnodes: {n: {}}\n")
    (tmp_path / "a.json").write_text('{"id": "a", "nodes": {"n": {}}}')
    (tmp_path / "c.yaml").write_text("id: c\nnodes: {n: {}}\n")
    (tmp_path / "notes.txt").write_text("not a definition")
    (tmp_path / "sub.yaml").mkdir()
    assert [p.name for p in iter_definition_files(tmp_path)] == ["a.json", "b.yml", "c.yaml"]
    assert iter_definition_files(tmp_path / "missing") == []
    assert validate_file(tmp_path / "notes.txt", DefinitionPolicy.allowing(*ALLOW)).codes == ["syntax"]
    assert validate_file(tmp_path / "nope.yaml", DefinitionPolicy.allowing(*ALLOW)).codes == ["syntax"]
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"id": "bad_json", "nodes": ')
    report = validate_file(bad_json, DefinitionPolicy.allowing(*ALLOW))
    assert report.codes == ["syntax"] and report.workflow_id == "bad_json" and report.errors[0].line == 1


def test_empty_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing here\n")
    assert validate_file(path, DefinitionPolicy.allowing(*ALLOW)).codes == ["empty"]


# ---- JSON Schema -----------------------------------------------------------------------------------
def test_shipped_schema_is_up_to_date() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_schema()
    schema = json.loads(render_schema())
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"id", "nodes"}
    assert schema_main(["--check"]) == 0
