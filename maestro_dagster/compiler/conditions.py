"""Safe, bounded evaluation of node conditions (``simpleeval``, never Python ``eval``), and what an error means.

A condition sees ``outputs`` (every ancestor's output, by node id) and ``global_context``, plus the pure
functions of :mod:`maestro_dagster.spec.conditions`, whose rules (length, depth, syntax) are checked again
here before evaluating, with the same parser validation uses. The evaluator is ``simpleeval``'s
``EvalWithCompoundTypes`` without comprehensions and f-strings, calling only the allowed methods, with
arithmetic bounded (integers of at most ``MAX_INT_BITS`` bits from ``*``, ``**``, ``<<`` and ``+``; strings
and sequences of at most ``MAX_SEQUENCE_LENGTH`` from ``*`` and ``+``; no ``%`` formatting of strings),
raising ``simpleeval``'s own ``NumberTooHigh`` / ``IterableTooLong`` / ``FeatureNotAvailable``.

Time: evaluation runs under a deadline, the node's timeout (``DEFAULT_DEADLINE_SECONDS`` when it has none),
checked at every AST node the evaluator visits; past it, ``NodeTimeoutError``: the node fails.

Errors: as in the original engine, an error while evaluating (e.g. a key of a skipped node) makes the node
run by default; ``defaults.on_condition_error`` (``run`` | ``skip`` | ``fail``) chooses, see :func:`decide`.
"""

from __future__ import annotations

import ast
import operator
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from simpleeval import EvalWithCompoundTypes, FeatureNotAvailable, IterableTooLong, NumberTooHigh

from maestro_dagster.errors import ExecutorError, NodeTimeoutError
from maestro_dagster.policy import DefinitionLimits
from maestro_dagster.settings import Settings
from maestro_dagster.spec.conditions import CONDITION_METHODS, FUNCTIONS, parse_condition

MAX_INT_BITS = 4096
MAX_POWER = 4096
MAX_SEQUENCE_LENGTH = 100_000
DEFAULT_DEADLINE_SECONDS = 30.0


def _is_int(value: Any) -> bool:
    return isinstance(value, int)


def _check_int(value: Any, what: str) -> Any:
    if _is_int(value) and value.bit_length() > MAX_INT_BITS:
        raise NumberTooHigh(f"{what} gives an integer of more than {MAX_INT_BITS} bits")
    return value


def _sized(value: Any) -> bool:
    return isinstance(value, str | bytes | list | tuple | dict | set | frozenset)


def _power(a: Any, b: Any) -> Any:
    if _is_int(a) and _is_int(b) and b > 0 and abs(a) > 1:
        if b > MAX_POWER or b * a.bit_length() > MAX_INT_BITS:
            raise NumberTooHigh(f"{a} ** {b} is too large (more than {MAX_INT_BITS} bits)")
    elif isinstance(b, int | float) and abs(b) > MAX_POWER and not (_is_int(a) and abs(a) <= 1):
        raise NumberTooHigh(f"exponent {b} is larger than {MAX_POWER}")
    return a**b


def _multiply(a: Any, b: Any) -> Any:
    if _is_int(a) and _is_int(b):
        if a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise NumberTooHigh(f"the product would have more than {MAX_INT_BITS} bits")
    else:
        count, sequence = (a, b) if _is_int(a) else (b, a)
        if _is_int(count) and _sized(sequence) and count > 0 and count * len(sequence) > MAX_SEQUENCE_LENGTH:
            raise IterableTooLong(f"repeating gives more than {MAX_SEQUENCE_LENGTH} items")
    return a * b


def _add(a: Any, b: Any) -> Any:
    if _sized(a) and _sized(b) and len(a) + len(b) > MAX_SEQUENCE_LENGTH:
        raise IterableTooLong(f"adding gives more than {MAX_SEQUENCE_LENGTH} items")
    return _check_int(a + b, "adding")


def _lshift(a: Any, b: Any) -> Any:
    if _is_int(a) and _is_int(b) and b > 0 and a and a.bit_length() + b > MAX_INT_BITS:
        raise NumberTooHigh(f"{a} << {b} would have more than {MAX_INT_BITS} bits")
    return a << b


def _modulo(a: Any, b: Any) -> Any:
    if isinstance(a, str | bytes):
        raise FeatureNotAvailable("'%' formatting of strings is not available in conditions")
    return a % b


OPERATORS: dict[type[ast.AST], Any] = {
    ast.Add: _add, ast.Sub: operator.sub, ast.Mult: _multiply, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: _modulo, ast.Pow: _power, ast.LShift: _lshift,
    ast.RShift: operator.rshift, ast.BitOr: operator.or_, ast.BitXor: operator.xor, ast.BitAnd: operator.and_,
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Gt: operator.gt, ast.Lt: operator.lt, ast.GtE: operator.ge,
    ast.LtE: operator.le, ast.Not: operator.not_, ast.USub: operator.neg, ast.UAdd: operator.pos,
    ast.Invert: operator.invert, ast.In: lambda x, y: operator.contains(y, x),
    ast.NotIn: lambda x, y: not operator.contains(y, x), ast.Is: operator.is_, ast.IsNot: operator.is_not,
}  # fmt: skip
_REMOVED_SYNTAX = (
    ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.JoinedStr, ast.FormattedValue, ast.Assign,
    ast.AugAssign, ast.Import,
)  # fmt: skip


class BoundedEval(EvalWithCompoundTypes):
    """``EvalWithCompoundTypes`` without comprehensions, with bounded arithmetic and a deadline."""

    def __init__(self, names: Mapping[str, Any], deadline: float, timeout_seconds: float) -> None:
        super().__init__(operators=dict(OPERATORS), functions=dict(FUNCTIONS), names=dict(names))
        self.functions = dict(FUNCTIONS)  # the parent adds list/tuple/dict/set: conditions do not offer them
        for syntax in _REMOVED_SYNTAX:
            self.nodes.pop(syntax, None)
        self.deadline = deadline
        self.timeout_seconds = timeout_seconds

    def _eval(self, node: ast.AST) -> Any:
        if time.monotonic() > self.deadline:
            raise NodeTimeoutError(
                f"the condition {self.expr!r} did not finish within the node's timeout ({self.timeout_seconds:g} s): "
                "simplify it",
                details={"condition": self.expr, "timeout_seconds": self.timeout_seconds},
            )
        return super()._eval(node)

    def _eval_call(self, node: ast.Call) -> Any:
        if isinstance(node.func, ast.Attribute) and node.func.attr not in CONDITION_METHODS:
            raise FeatureNotAvailable(f"the method {node.func.attr!r} is not available in conditions")
        return super()._eval_call(node)


def evaluate_condition(
    expression: str,
    outputs: Mapping[str, Any],
    global_context: Mapping[str, Any],
    *,
    timeout_seconds: float | None = None,
    limits: DefinitionLimits | None = None,
) -> tuple[bool, str | None]:
    """``(value, error)``; ``value`` is True when evaluation failed (the original's rule), with the error.

    Raises ``NodeTimeoutError`` when evaluation runs past ``timeout_seconds`` (default
    ``DEFAULT_DEADLINE_SECONDS``): that is the node's failure, not an evaluation error."""
    parsed = parse_condition(expression, limits)
    if parsed.tree is None:
        return True, f"refused: the condition {parsed.error}"
    seconds = DEFAULT_DEADLINE_SECONDS if timeout_seconds is None else timeout_seconds
    evaluator = BoundedEval(
        {"outputs": dict(outputs), "global_context": dict(global_context)}, time.monotonic() + seconds, seconds
    )
    try:
        return bool(evaluator.eval(expression, previously_parsed=parsed.tree.body)), None
    except NodeTimeoutError:
        raise
    except Exception as exc:  # any failure of a user expression, including RecursionError and MemoryError
        return True, f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class ConditionOutcome:
    """Whether the node runs, and the evaluation error (None when the condition was evaluated)."""

    run: bool
    error: str | None = None


def decide(
    expression: str,
    outputs: Mapping[str, Any],
    global_context: Mapping[str, Any],
    *,
    on_error: str = "run",
    timeout_seconds: float | None = None,
    settings: Settings | None = None,
) -> ConditionOutcome:
    """Evaluate a node's condition and apply ``defaults.on_condition_error`` to an evaluation error.

    ``run``: the node runs; ``skip``: it is skipped like a false condition; ``fail``: ``ExecutorError`` naming
    the condition and the error (the node fails). A deadline overrun raises ``NodeTimeoutError`` in every case."""
    limits = DefinitionLimits.from_settings(settings) if settings is not None else None
    value, error = evaluate_condition(
        expression, outputs, global_context, timeout_seconds=timeout_seconds, limits=limits
    )
    if error is None:
        return ConditionOutcome(value)
    if on_error == "fail":
        raise ExecutorError(
            f"the condition {expression!r} could not be evaluated ({error}) and defaults.on_condition_error is "
            "'fail': fix the condition (e.g. use outputs.get('x', {}).get('key') for values that may be missing), "
            "or set on_condition_error to 'run' or 'skip'",
            details={"condition": expression, "error": error, "on_condition_error": on_error},
        )
    return ConditionOutcome(on_error != "skip", error)
