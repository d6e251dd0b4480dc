"""Conditions under attack: refused at validation when they could build unbounded data or hide work, bounded at
run time by simpleeval's own limits and by the node's timeout; what an evaluation error means (run/skip/fail)."""

from __future__ import annotations

import time

import pytest
from _defs import chain, definition
from simpleeval import FeatureNotAvailable, IterableTooLong, NumberTooHigh

from maestro_dagster.compiler.conditions import BoundedEval, decide, evaluate_condition
from maestro_dagster.errors import ExecutorError, NodeTimeoutError
from maestro_dagster.policy import DefinitionLimits, DefinitionPolicy
from maestro_dagster.settings import Settings
from maestro_dagster.spec import analyse_condition, validate_definition

GENEROUS_SECONDS = 10


def conditioned(condition: str) -> dict:
    return definition("cond", {"a": {}, "b": {"condition": condition}}, chain("a", "b"))


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("[x for x in outputs['a']['items']]", "list comprehension"),
        ("{x for x in outputs['a']['items']}", "set comprehension"),
        ("{k: v for k, v in outputs['a'].items()}", "dict comprehension"),
        ("any(x > 1 for x in outputs['a']['items'])", "generator expression"),
        ("len([0 for a in outputs for b in outputs for c in outputs]) > 0", "list comprehension"),
        ("(lambda: 1)() == 1", "lambda"),
        ("(n := 5) > 1", "assignment"),
        ("[*outputs] == []", "'*' unpacking"),
        ("f'{global_context}' == ''", "f-string"),
        ("'%999999999d' % 1 == ''", "'%' formatting"),
        ("'a'.center(10**9) == ''", "'center'"),
        ("'x'.join(['a', 'b']) == ''", "'join'"),
        ("'a'.replace('a', 'bb') == ''", "'replace'"),
        ("'{:>99999999}'.format(1) == ''", "'format'"),
        ("outputs.get.__self__", "'__self__'"),
        ("outputs(1)", "value, not a function"),
        ("outputs['a'] @ outputs['b']", "'@'"),
        ("list(outputs)", "'list'"),
        ("__import__('os')", "'__import__'"),
    ],
)
def test_hostile_syntax_is_refused_statically(expression: str, fragment: str) -> None:
    info = analyse_condition(expression)
    assert info.error is not None and fragment in info.error, info.error
    report = validate_definition(conditioned(expression), policy=DefinitionPolicy.allowing())
    assert report.codes == ["bad_condition"] and report.errors[0].node_id == "b"


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("not " * 50_000 + "True", "MAESTRO_MAX_CONDITION_CHARS=2000"),
        ("+".join(["1"] * 200_000), "MAESTRO_MAX_CONDITION_CHARS=2000"),
        ("-" * 1500 + "1", "MAESTRO_MAX_CONDITION_DEPTH=32"),
        ("abs(" * 40 + "1" + ")" * 40, "MAESTRO_MAX_CONDITION_DEPTH=32"),
        ("+".join(["1"] * 600), "MAESTRO_MAX_CONDITION_DEPTH=32"),  # a left-deep chain of 599 additions
        ("(" * 300 + "1" + ")" * 300, "does not parse"),
        ("True\x00", "null bytes"),
    ],
)
def test_oversized_conditions_are_refused_before_or_while_parsing(expression: str, fragment: str) -> None:
    started = time.perf_counter()
    report = validate_definition(conditioned(expression), policy=DefinitionPolicy.allowing())  # an API 500 before
    assert time.perf_counter() - started < GENEROUS_SECONDS
    assert report.codes == ["bad_condition"], report.summary()
    assert fragment in report.errors[0].message
    assert len(report.errors[0].message) < 1000  # the condition itself is shortened in the message


def test_a_parser_out_of_stack_is_a_refusal_not_an_exception() -> None:
    # with the length limit raised, the parser itself gives up on 50,000 nested 'not': reported, not raised
    limits = DefinitionLimits(max_condition_chars=1_000_000)
    info = analyse_condition("not " * 50_000 + "True", limits)
    assert info.error is not None and "nest" in info.error


def test_condition_limits_are_settings() -> None:
    limits = DefinitionLimits(max_condition_chars=10, max_condition_depth=2)
    assert "MAESTRO_MAX_CONDITION_CHARS=10" in (analyse_condition("outputs['abc']", limits).error or "")
    assert analyse_condition("1 + 1", limits).error is None
    assert "MAESTRO_MAX_CONDITION_DEPTH=2" in (analyse_condition("1 + 1 + 1", limits).error or "")


def test_usual_conditions_still_pass() -> None:
    for expression in (
        "outputs['a']['status'] != 'ok' and global_context.get('env', 'dev') == 'prod'",
        "len(outputs['a'].get('items', [])) > 3 or max(1, 2) == 2",
        "outputs['a']['name'].lower().startswith('x') and 'k' in outputs['a'].keys()",
        "any([outputs['a'].get('x', 0) > 0.5, round(2.345, 2) == 2.35]) and {'a': 1}['a'] == 1",
        "outputs['a']['s'][1:3] == 'bc' if outputs['a'] else False",
    ):
        assert analyse_condition(expression).error is None, expression


# ---- run time --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ("9**4000000 * 9**4000000 > 0", NumberTooHigh),  # ran 128 s past a 5 s timeout before
        ("2**4000 * 2**4000 > 0", NumberTooHigh),
        ("1 << 10**9 > 0", NumberTooHigh),
        ("(2**4000 + 2**4000) * 2 > 0", NumberTooHigh),
        ("len('a' * 10**9) > 0", IterableTooLong),
        ("len([1] * 60000 + [1] * 60000) > 0", IterableTooLong),
        ("global_context['fmt'] % 1 == ''", FeatureNotAvailable),  # '%999999999d' from the run's context
        # shared references: 99,999 copies of one 99,999-item list are 10**10 items for str() or max() to walk
        ("len(str([[1] * 99999] * 99999)) > 0", IterableTooLong),
        ("max([[1] * 99999] * 99999) == 1", IterableTooLong),
        ("len(str([['a' * 99999] * 1] * 2)) > 0", IterableTooLong),
        # many values each under the per-value bound: the evaluation's budget stops them
        ("len([" + ", ".join(["'x' * 99999"] * 12) + "]) > 0", IterableTooLong),
    ],
)
def test_runtime_arithmetic_is_bounded(expression: str, error: type[Exception]) -> None:
    context = {"fmt": "%999999999d"}
    evaluator = BoundedEval({"outputs": {}, "global_context": context}, time.monotonic() + 60, 60)
    started = time.perf_counter()
    with pytest.raises(error):
        evaluator.eval(expression)
    assert time.perf_counter() - started < GENEROUS_SECONDS
    value, message = evaluate_condition(expression, {}, context)
    assert value is True and message is not None and error.__name__ in message


def test_what_a_condition_builds_is_bounded_but_reading_large_outputs_is_not() -> None:
    outputs = {"a": {"items": list(range(500_000)), "text": "y" * 1_000_000}}
    assert evaluate_condition("len(outputs['a']['items']) > 3 and 'y' in outputs['a']['text']", outputs, {}) == (
        True,
        None,
    )
    assert evaluate_condition("max(outputs['a']['items']) == 499999", outputs, {}) == (True, None)
    value, error = evaluate_condition("len(outputs['a']['items'] + [1]) > 0", outputs, {})
    assert value is True and error is not None and "IterableTooLong" in error
    assert evaluate_condition("len(str([1, 2] * 3) + 'a' * 10) == 28", {}, {}) == (True, None)


def test_runtime_refuses_what_validation_refuses() -> None:
    # a definition stored before these rules, or checked under wider limits, is held to them at run time
    for expression in ("[x for x in range(10**8)]", "'a'.center(10**9) == ''", "f'{1:>999999999}' == ''"):
        value, message = evaluate_condition(expression, {}, {})
        assert value is True and message is not None and message.startswith("refused: the condition")
    evaluator = BoundedEval({"outputs": {"a": [1, 2]}, "global_context": {}}, time.monotonic() + 60, 60)
    with pytest.raises(FeatureNotAvailable):  # the evaluator itself has no comprehension
        evaluator.eval("[x for x in outputs['a']]")
    with pytest.raises(FeatureNotAvailable):
        evaluator.eval("'x'.join(['a'])")


def test_runtime_uses_the_limits_it_is_given() -> None:
    value, message = evaluate_condition("1 + 1 + 1 == 3", {}, {}, limits=DefinitionLimits(max_condition_depth=2))
    assert value is True and message is not None and "MAESTRO_MAX_CONDITION_DEPTH" in message
    assert evaluate_condition("1 + 1 + 1 == 3", {}, {}) == (True, None)
    assert evaluate_condition("1 + 1 + 1 == 4", {}, {}) == (False, None)


def test_usual_conditions_evaluate() -> None:
    outputs = {"a": {"status": "ok", "items": [1, 2, 3, 4], "name": "Xavier", "n": 10}}
    context = {"env": "prod"}
    cases = {
        "outputs['a']['status'] == 'ok' and global_context.get('env') == 'prod'": True,
        "len(outputs['a']['items']) > 3 and max(outputs['a']['items']) == 4": True,
        "outputs['a']['name'].lower().startswith('x')": True,
        "outputs['a']['n'] ** 3 + 2**100 > 0 and round(2.5) == 2": True,
        "outputs.get('missing', {}).get('x', 0) > 1": False,
    }
    for expression, expected in cases.items():
        assert evaluate_condition(expression, outputs, context) == (expected, None), expression


def test_evaluation_past_the_deadline_is_a_node_timeout() -> None:
    with pytest.raises(NodeTimeoutError) as caught:
        evaluate_condition("True", {}, {}, timeout_seconds=1e-6)
    assert "timeout" in caught.value.message and caught.value.details["condition"] == "True"


def test_the_deadline_is_checked_while_evaluating() -> None:
    # 60 scans of 20 MB: far more than 10 ms however fast the machine; the deadline stops it between scans
    expression = " or ".join(["'z' in outputs['a']['s']"] * 60)
    outputs = {"a": {"s": "y" * 20_000_000}}
    started = time.perf_counter()
    with pytest.raises(NodeTimeoutError):
        evaluate_condition(expression, outputs, {}, timeout_seconds=0.01)
    assert time.perf_counter() - started < GENEROUS_SECONDS
    assert evaluate_condition(expression, {"a": {"s": "y"}}, {}, timeout_seconds=5) == (False, None)


# ---- on_condition_error ----------------------------------------------------------------------------
def test_decide_applies_on_condition_error() -> None:
    broken = "outputs['a']['missing'] == 1"
    outputs = {"a": {}}
    run = decide(broken, outputs, {}, on_error="run")
    assert run.run and run.error is not None and "KeyError" in run.error
    skip = decide(broken, outputs, {}, on_error="skip")
    assert not skip.run and skip.error is not None
    with pytest.raises(ExecutorError) as caught:
        decide(broken, outputs, {}, on_error="fail")
    assert broken in caught.value.message and "KeyError" in caught.value.message
    assert caught.value.details["on_condition_error"] == "fail"
    # no error: the condition decides, whatever the rule
    assert decide("False", {}, {}, on_error="fail") == decide("False", {}, {}, on_error="run")
    assert not decide("False", {}, {}, on_error="run").run


def test_decide_reads_the_limits_from_the_settings() -> None:
    settings = Settings(MAESTRO_MAX_CONDITION_CHARS=5)
    outcome = decide("1 == 1 and True", {}, {}, on_error="skip", settings=settings)
    assert not outcome.run and outcome.error is not None and "MAESTRO_MAX_CONDITION_CHARS=5" in outcome.error


def test_a_timeout_is_not_an_evaluation_error_whatever_the_rule() -> None:
    for rule in ("run", "skip", "fail"):
        with pytest.raises(NodeTimeoutError):
            decide("True", {}, {}, on_error=rule, timeout_seconds=1e-6)


def test_on_condition_error_is_validated() -> None:
    raw = {"id": "w", "nodes": {"a": {}}, "defaults": {"on_condition_error": "explode"}}
    report = validate_definition(raw, policy=DefinitionPolicy.allowing())
    assert report.codes == ["schema"] and report.errors[0].location == "defaults.on_condition_error"
    for rule in ("run", "skip", "fail"):
        raw["defaults"]["on_condition_error"] = rule
        spec = validate_definition(raw, policy=DefinitionPolicy.allowing()).spec
        assert spec is not None and spec.defaults.on_condition_error == rule


def test_the_default_rule_keeps_the_content_hash_of_older_definitions() -> None:
    policy = DefinitionPolicy.allowing()
    plain = validate_definition({"id": "w", "nodes": {"a": {}}}, policy=policy).spec
    explicit = validate_definition(
        {"id": "w", "nodes": {"a": {}}, "defaults": {"on_condition_error": "run"}}, policy=policy
    )
    skip = validate_definition(
        {"id": "w", "nodes": {"a": {}}, "defaults": {"on_condition_error": "skip"}}, policy=policy
    )
    assert plain is not None and explicit.spec is not None and skip.spec is not None
    assert "on_condition_error" not in plain.to_storage()["defaults"]
    assert explicit.spec.content_hash() == plain.content_hash() != skip.spec.content_hash()
    assert type(plain).from_storage(skip.spec.to_storage()).defaults.on_condition_error == "skip"
