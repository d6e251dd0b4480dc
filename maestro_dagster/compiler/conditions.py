"""Safe, bounded evaluation of node conditions (``simpleeval``, never Python ``eval``), and what an error means.

A condition sees ``outputs`` (every ancestor's output, by node id) and ``global_context``, plus the pure
functions of :data:`maestro_dagster.spec.conditions.FUNCTION_TABLE`, whose rules (length, depth, syntax) are checked
again here before evaluating, with the same parser validation uses. The evaluator is ``simpleeval``'s
``EvalWithCompoundTypes`` without comprehensions and f-strings, calling only the allowed methods, with
arithmetic bounded (integers of at most ``MAX_INT_BITS`` bits from ``*``, ``**``, ``<<`` and ``+``; no ``%``
formatting of strings) and what it builds bounded (by ``*``, ``+``, literal lists/dicts/sets/tuples and
``str``: at most ``MAX_SEQUENCE_LENGTH`` items and characters per value, nested and shared ones counted each
time, ``MAX_BUILT`` per evaluation), raising ``simpleeval``'s own ``NumberTooHigh`` / ``IterableTooLong`` /
``FeatureNotAvailable``.

Time: evaluation runs under a deadline, the node's timeout (``DEFAULT_DEADLINE_SECONDS`` when it has none),
checked at every AST node the evaluator visits; past it, ``NodeTimeoutError``: the node fails.

Errors: as in the original engine, an error while evaluating (e.g. a key of a skipped node) makes the node
run by default; ``defaults.on_condition_error`` (``run`` | ``skip`` | ``fail``) chooses, see :func:`decide`.
"""

from __future__ import annotations

import ast
import operator
import time
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from simpleeval import (
    DISALLOW_FUNCTIONS,
    EvalWithCompoundTypes,
    FeatureNotAvailable,
    IterableTooLong,
    NumberTooHigh,
)

from maestro_dagster.errors import ExecutorError, NodeTimeoutError
from maestro_dagster.policy import DefinitionLimits
from maestro_dagster.settings import Settings
from maestro_dagster.spec.conditions import CONDITION_METHODS, FUNCTION_TABLE, parse_condition

MAX_INT_BITS = 4096
MAX_POWER = 4096
MAX_SEQUENCE_LENGTH = 100_000  # items (and characters) of one value a condition builds, nested ones included
MAX_BUILT = 1_000_000  # items (and characters) all the values one evaluation builds may hold together
DEFAULT_DEADLINE_SECONDS = 30.0
_CONTAINERS = (list, tuple, set, frozenset, dict)
_SIZED = (*_CONTAINERS, str, bytes)


def expanded_size(value: Any, cap: int) -> int:
    """Items and characters of ``value`` counted through nested containers, a shared one each time it appears
    (``[[1] * 99_999] * 99_999`` is 10**10, what ``str`` or ``max`` of it would walk); stops once past ``cap``."""
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            count += len(item)
        elif isinstance(item, _CONTAINERS):
            count += len(item)
            if count > cap:
                return count
            stack.extend(item.items() if isinstance(item, dict) else item)
        else:
            count += 1
        if count > cap:
            return count
    return count


def _forbidden(item: Any) -> bool:
    try:
        return item in DISALLOW_FUNCTIONS
    except TypeError:  # unhashable
        return False


def _int(value: Any) -> bool:
    return isinstance(value, int)


def _check_int(value: Any, what: str) -> Any:
    if _int(value) and value.bit_length() > MAX_INT_BITS:
        raise NumberTooHigh(f"{what} gives an integer of more than {MAX_INT_BITS} bits")
    return value


def _power(a: Any, b: Any) -> Any:
    if _int(a) and _int(b) and b > 0 and abs(a) > 1:
        if b > MAX_POWER or b * a.bit_length() > MAX_INT_BITS:
            raise NumberTooHigh(f"{a} ** {b} is too large (more than {MAX_INT_BITS} bits)")
    elif isinstance(b, int | float) and abs(b) > MAX_POWER and not (_int(a) and abs(a) <= 1):
        raise NumberTooHigh(f"exponent {b} is larger than {MAX_POWER}")
    return a**b


def _lshift(a: Any, b: Any) -> Any:
    if _int(a) and _int(b) and b > 0 and a and a.bit_length() + b > MAX_INT_BITS:
        raise NumberTooHigh(f"{a} << {b} would have more than {MAX_INT_BITS} bits")
    return a << b


def _modulo(a: Any, b: Any) -> Any:
    if isinstance(a, str | bytes):
        raise FeatureNotAvailable("'%' formatting of strings is not available in conditions")
    return a % b


OPERATORS: dict[type[ast.AST], Any] = {
    ast.Sub: operator.sub,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: _modulo,
    ast.Pow: _power,
    ast.LShift: _lshift,
    ast.RShift: operator.rshift,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
    ast.BitAnd: operator.and_,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Gt: operator.gt,
    ast.Lt: operator.lt,
    ast.GtE: operator.ge,
    ast.LtE: operator.le,
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
    ast.Invert: operator.invert,
    ast.In: lambda x, y: operator.contains(y, x),
    ast.NotIn: lambda x, y: not operator.contains(y, x),
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}  # fmt: skip; + and * are the evaluator's own (they count what they build)
_REMOVED_SYNTAX = (
    ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.JoinedStr, ast.FormattedValue, ast.Assign,
    ast.AugAssign, ast.Import,
)  # fmt: skip


class BoundedEval(EvalWithCompoundTypes):
    """``EvalWithCompoundTypes`` without comprehensions, with bounded arithmetic, a budget for what it builds
    (repetition, concatenation, literal lists/dicts/sets/tuples, ``str``) and a deadline."""

    def __init__(self, names: Mapping[str, Any], deadline: float, timeout_seconds: float) -> None:
        operators = {**OPERATORS, ast.Add: self._add, ast.Mult: self._multiply}
        super().__init__(operators=operators, functions=dict(FUNCTION_TABLE), names=dict(names))
        # the spec's functions, ``str`` counting what it builds; the parent adds list/tuple/dict/set: not offered
        self.functions = {**FUNCTION_TABLE, "str": self._str}
        for syntax in _REMOVED_SYNTAX:
            self.nodes.pop(syntax, None)
        self.deadline = deadline
        self.timeout_seconds = timeout_seconds
        self.built = 0

    def _eval(self, node: ast.AST) -> Any:
        if time.monotonic() > self.deadline:
            raise NodeTimeoutError(
                f"the condition {self.expr!r} did not finish within the node's timeout ({self.timeout_seconds:g} s): "
                "simplify it",
                details={"condition": self.expr, "timeout_seconds": self.timeout_seconds},
            )
        return super()._eval(node)

    def _check_disallowed_items(self, item: Any) -> None:
        """simpleeval walks every container a node evaluates to, looking for modules and forbidden functions: a
        condition's names are JSON data (outputs are checked JSON-serialisable, the context is run config), so
        only the value itself is checked, not the whole of ``outputs`` again at every reference to it."""
        if isinstance(item, types.ModuleType) or (callable(item) and _forbidden(item)):
            raise FeatureNotAvailable("modules and forbidden functions are not available in conditions")

    def _eval_call(self, node: ast.Call) -> Any:
        if isinstance(node.func, ast.Attribute) and node.func.attr not in CONDITION_METHODS:
            raise FeatureNotAvailable(f"the method {node.func.attr!r} is not available in conditions")
        return super()._eval_call(node)

    def _build(self, size: int, what: str) -> None:
        """Count ``size`` items about to be built: over ``MAX_SEQUENCE_LENGTH`` for one value, or ``MAX_BUILT``
        for the whole evaluation, is ``IterableTooLong`` (before building it)."""
        if size > MAX_SEQUENCE_LENGTH:
            raise IterableTooLong(f"{what} gives more than {MAX_SEQUENCE_LENGTH} items (nested ones included)")
        self.built += size
        if self.built > MAX_BUILT:
            raise IterableTooLong(f"the condition builds more than {MAX_BUILT} items in all")

    def _add(self, a: Any, b: Any) -> Any:
        if isinstance(a, _SIZED) and isinstance(b, _SIZED):
            cap = MAX_SEQUENCE_LENGTH
            self._build(expanded_size(a, cap) + expanded_size(b, cap), "adding")
        return _check_int(a + b, "adding")

    def _multiply(self, a: Any, b: Any) -> Any:
        if _int(a) and _int(b):
            if a.bit_length() + b.bit_length() > MAX_INT_BITS:
                raise NumberTooHigh(f"the product would have more than {MAX_INT_BITS} bits")
            return a * b
        count, sequence = (a, b) if _int(a) else (b, a)
        if _int(count) and isinstance(sequence, _SIZED) and count > 0:
            if count > MAX_SEQUENCE_LENGTH:
                raise IterableTooLong(f"repeating {count} times gives more than {MAX_SEQUENCE_LENGTH} items")
            self._build(count * expanded_size(sequence, MAX_SEQUENCE_LENGTH), "repeating")
        return a * b

    def _built_literal(self, value: Any) -> Any:
        self._build(expanded_size(value, MAX_SEQUENCE_LENGTH), "a literal")
        return value

    def _eval_list(self, node: ast.List) -> Any:
        return self._built_literal(super()._eval_list(node))

    def _eval_tuple(self, node: ast.Tuple) -> Any:
        return self._built_literal(super()._eval_tuple(node))

    def _eval_set(self, node: ast.Set) -> Any:
        return self._built_literal(super()._eval_set(node))

    def _eval_dict(self, node: ast.Dict) -> Any:
        return self._built_literal(super()._eval_dict(node))

    def _str(self, value: Any = "") -> str:
        if isinstance(value, _CONTAINERS):
            self._build(expanded_size(value, MAX_SEQUENCE_LENGTH), "str()")
        return str(value)


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


def evaluate_items(
    expression: str,
    outputs: Mapping[str, Any],
    global_context: Mapping[str, Any],
    *,
    max_items: int,
    timeout_seconds: float | None = None,
    limits: DefinitionLimits | None = None,
) -> list[Any]:
    """The list a ``for_each`` expression gives (same language, bounds and deadline as a condition); an error, a
    value that is not a list or one of more than ``max_items`` items raises ``ExecutorError`` naming it."""
    parsed = parse_condition(expression, limits)
    if parsed.tree is None:
        raise ExecutorError(f"for_each {expression!r} is refused: it {parsed.error}")
    seconds = DEFAULT_DEADLINE_SECONDS if timeout_seconds is None else timeout_seconds
    evaluator = BoundedEval(
        {"outputs": dict(outputs), "global_context": dict(global_context)}, time.monotonic() + seconds, seconds
    )
    try:
        value = evaluator.eval(expression, previously_parsed=parsed.tree.body)
    except NodeTimeoutError:
        raise
    except Exception as exc:  # any failure of a user expression, including RecursionError and MemoryError
        raise ExecutorError(
            f"for_each {expression!r} could not be evaluated ({type(exc).__name__}: {exc}): fix the expression "
            "(e.g. outputs.get('x', {}).get('items', []) for a value that may be missing)",
            details={"for_each": expression},
        ) from None
    if not isinstance(value, list | tuple):
        raise ExecutorError(
            f"for_each {expression!r} gave a {type(value).__name__}, not a list: make it give the list of items "
            "(e.g. outputs['fetch']['files'], a list an upstream node returns)",
            details={"for_each": expression},
        )
    if len(value) > max_items:
        raise ExecutorError(
            f"for_each {expression!r} gave {len(value)} items, more than {max_items}: split the list upstream "
            "(e.g. into batches of items, one per fan-out item)",
            details={"for_each": expression, "items": len(value)},
        )
    return list(value)


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
