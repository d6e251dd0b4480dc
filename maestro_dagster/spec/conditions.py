"""The condition language: what a node's ``condition`` may contain, and the one parser validation and runs share.

A condition is one Python *expression* over ``outputs`` (ancestors' outputs by node id) and ``global_context``,
evaluated by ``simpleeval`` (:mod:`maestro_dagster.compiler.conditions`), never by ``eval``. This module owns
its rules, so validation (:mod:`.node_checks`) and the runtime can never disagree:

- the text is at most ``max_condition_chars`` long, checked before parsing; parsing errors of any kind
  (syntax, a parser out of stack or memory, null bytes) are a refusal, never an exception;
- the expression nests at most ``max_condition_depth`` levels (an iterative walk of the AST);
- only the syntax in ``_ALLOWED_SYNTAX``: no comprehension or generator, lambda, ':=', '*' unpacking or
  f-string (each can build unbounded data or hide work); calls only of the functions of ``FUNCTION_TABLE``
  (by name: ``CONDITION_FUNCTIONS``) and of the methods ``CONDITION_METHODS``; no attribute starting with '_';
  no other names than ``CONDITION_NAMES``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, cast

from maestro_dagster.policy import DefinitionLimits
from maestro_dagster.spec.limits import limit_hint, raise_hint

CONDITION_NAMES: tuple[str, ...] = ("outputs", "global_context")
#: Methods a condition may call (on dicts and strings): none of them builds more than its input.
CONDITION_METHODS: tuple[str, ...] = (
    "get", "keys", "values", "items", "startswith", "endswith", "lower", "upper", "casefold", "strip", "lstrip",
    "rstrip", "split", "count", "find", "isdigit", "isalpha", "isalnum", "isspace",
)  # fmt: skip
MAX_ROUND_DIGITS = 100


def _round(number: Any, ndigits: int | None = None) -> Any:
    """``round`` with a bounded ``ndigits`` (``round(1, -10**6)`` would compute 10**1000000)."""
    if ndigits is not None and (not isinstance(ndigits, int) or abs(ndigits) > MAX_ROUND_DIGITS):
        raise ValueError(f"round(): ndigits must be an integer from -{MAX_ROUND_DIGITS} to {MAX_ROUND_DIGITS}")
    return round(number) if ndigits is None else round(number, ndigits)


#: The functions a condition may call, by name, declared only here: validation checks a name against it and
#: the evaluator (:mod:`maestro_dagster.compiler.conditions`) calls these (its ``str`` counts what it builds).
FUNCTION_TABLE: Mapping[str, Callable[..., Any]] = MappingProxyType({
    "any": any, "all": all, "len": len, "str": str, "int": int, "float": float, "bool": bool,
    "min": min, "max": max, "abs": abs, "round": _round,
})  # fmt: skip
CONDITION_FUNCTIONS: tuple[str, ...] = tuple(FUNCTION_TABLE)
_FUNCTION_NAMES = frozenset(CONDITION_FUNCTIONS)

_ALLOWED_SYNTAX: frozenset[type[ast.AST]] = frozenset({
    ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp, ast.Call, ast.keyword,
    ast.Constant, ast.Subscript, ast.Slice, ast.Name, ast.Attribute, ast.List, ast.Tuple, ast.Dict, ast.Set,
})  # fmt: skip
_SKIPPED_FIELDS = frozenset({"ctx", "op", "ops"})  # Load/operator nodes: nothing to check below them
_SYNTAX_LABELS: dict[type[ast.AST], str] = {
    ast.ListComp: "a list comprehension",
    ast.SetComp: "a set comprehension",
    ast.DictComp: "a dict comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.Lambda: "lambda",
    ast.NamedExpr: "':=' (assignment)",
    ast.Starred: "'*' unpacking",
    ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield from",
}
_NO_LOOPS = (
    "conditions have no loops (comprehensions and generators can build unbounded data): test the values "
    "directly, e.g. any([outputs['a']['x'] > 0, outputs['b']['x'] > 0])"
)


@dataclass(frozen=True)
class ParsedCondition:
    """A condition checked against the rules: ``tree`` when it may run, else ``error`` (what and how to fix)."""

    tree: ast.Expression | None
    error: str | None = None
    output_refs: tuple[str, ...] = ()


def parse_condition(expression: Any, limits: DefinitionLimits | None = None) -> ParsedCondition:
    """Check ``expression`` against the condition rules; never raises."""
    limits = limits or DefinitionLimits()
    if not isinstance(expression, str):
        return ParsedCondition(None, f"must be a string, got {type(expression).__name__}")
    if len(expression) > limits.max_condition_chars:
        return ParsedCondition(
            None,
            f"is {len(expression)} characters long, more than the limit "
            f"{limit_hint('max_condition_chars', limits)}: shorten it (compute the value in an earlier node and "
            f"test its output), {raise_hint('max_condition_chars')}",
        )
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        column = f", column {exc.offset}" if exc.offset else ""
        return ParsedCondition(None, f"does not parse as an expression ({exc.msg}{column})")
    except (RecursionError, MemoryError):
        return ParsedCondition(
            None,
            f"nests too deeply to be parsed: write it with fewer nested operators (at most "
            f"{limit_hint('max_condition_depth', limits)} levels)",
        )
    except ValueError as exc:  # e.g. a null byte
        return ParsedCondition(None, f"cannot be parsed ({exc}): remove control characters")
    error, refs = _check_tree(tree, limits)
    return ParsedCondition(None if error else tree, error, refs)


def _check_tree(tree: ast.Expression, limits: DefinitionLimits) -> tuple[str | None, tuple[str, ...]]:
    """Depth, syntax, names, attributes and calls, in one iterative walk; and the ``outputs['x']`` it reads.

    The tree is small (its text is at most ``max_condition_chars``): it is walked whole, and the most telling
    problem is reported: depth or syntax (the first found), else names, private attributes, calls."""
    refs: list[tuple[int, int, str]] = []
    found: dict[int, str] = {}
    max_depth = limits.max_condition_depth
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return (
                f"nests more than {max_depth} levels deep ({limit_hint('max_condition_depth', limits)}): split it "
                f"into simpler tests, {raise_hint('max_condition_depth')}"
            ), ()
        kind = type(node)
        if kind is ast.Constant:
            continue
        # ``kind is`` (not isinstance) is the fast test here; the casts tell mypy what it established.
        if kind is ast.Name:
            name_id = cast(ast.Name, node).id
            if name_id not in CONDITION_NAMES and name_id not in _FUNCTION_NAMES:
                found.setdefault(0, _name_error(name_id))
            continue
        if kind not in _ALLOWED_SYNTAX or (kind is ast.BinOp and type(cast(ast.BinOp, node).op) is ast.MatMult):
            return _syntax_error(node), ()
        if kind is ast.Attribute:
            attr = cast(ast.Attribute, node).attr
            if attr.startswith("_"):
                found.setdefault(1, f"accesses the private attribute {attr!r}, which is not allowed")
        elif kind is ast.Call or kind is ast.Subscript:
            error = _call_error(cast(ast.Call, node)) if kind is ast.Call else None
            if error:
                found.setdefault(2, error)
            ref = _output_ref(node)
            if ref is not None:
                expr = cast(ast.expr, node)
                refs.append((expr.lineno, expr.col_offset, ref))
        elif kind is ast.BinOp and type(cast(ast.BinOp, node).op) is ast.Mod and _is_text(cast(ast.BinOp, node).left):
            found.setdefault(2, "uses '%' formatting of a string, which conditions do not support")
        children: list[tuple[ast.AST, int]] = []
        for name in node._fields:
            if name in _SKIPPED_FIELDS:
                continue
            value = getattr(node, name, None)
            if isinstance(value, list):
                children.extend((item, depth + 1) for item in value if isinstance(item, ast.AST))
            elif isinstance(value, ast.AST):
                children.append((value, depth + 1))
        stack.extend(reversed(children))
    if found:
        return found[min(found)], ()
    return None, tuple(dict.fromkeys(ref for *_, ref in sorted(refs)))


def _is_text(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str | bytes)


def _syntax_error(node: ast.AST) -> str:
    if isinstance(node, ast.BinOp):
        return "uses '@' (matrix multiplication), which conditions do not support"
    label = _SYNTAX_LABELS.get(type(node))
    if label is None:
        return f"uses {type(node).__name__}, which conditions do not support"
    if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
        return f"uses {label}, which conditions do not support: {_NO_LOOPS}"
    return f"uses {label}, which conditions do not support"


def _name_error(name: str) -> str:
    return (
        f"uses the name {name!r}: only {', '.join(CONDITION_NAMES)} and the functions "
        f"{', '.join(CONDITION_FUNCTIONS)} are available"
    )


def _call_error(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Attribute):
        if func.attr in CONDITION_METHODS or func.attr.startswith("_"):
            return None  # a private attribute is reported as such
        return (
            f"calls the method {func.attr!r}, which conditions do not offer: the methods are "
            f"{', '.join(CONDITION_METHODS)}"
        )
    if isinstance(func, ast.Name):
        if func.id in CONDITION_NAMES:
            return f"calls {func.id!r}, which is a value, not a function"
        return None  # a function, or an unknown name (reported as such)
    return f"calls {type(func).__name__}, which conditions do not offer: the functions are " + ", ".join(
        CONDITION_FUNCTIONS
    )


def _output_ref(node: ast.AST) -> str | None:
    """The node id in ``outputs['x']`` or ``outputs.get('x')``."""
    key: ast.expr | None
    if isinstance(node, ast.Subscript):
        base, key = node.value, node.slice
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        base, key = node.func.value, (node.args[0] if node.args else None)
    else:
        return None
    if isinstance(base, ast.Name) and base.id == "outputs" and isinstance(key, ast.Constant):
        return key.value if isinstance(key.value, str) else None
    return None
