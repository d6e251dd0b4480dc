"""Safe evaluation of node conditions (``simpleeval``, never Python ``eval``).

A condition sees ``outputs`` (every ancestor's output, by node id) and ``global_context``, plus a few pure
functions. As in the original engine, an error while evaluating (e.g. a key of a skipped node) counts as
true: the node runs, and the error is reported to the caller for logging.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from simpleeval import EvalWithCompoundTypes

FUNCTIONS = {
    "any": any, "all": all, "len": len, "str": str, "int": int, "float": float, "bool": bool,
    "min": min, "max": max, "abs": abs, "round": round,
}  # fmt: skip


def evaluate_condition(
    expression: str, outputs: Mapping[str, Any], global_context: Mapping[str, Any]
) -> tuple[bool, str | None]:
    """Returns ``(value, error)``; ``value`` is True when evaluation failed (the original's rule)."""
    evaluator = EvalWithCompoundTypes(
        names={"outputs": dict(outputs), "global_context": dict(global_context)}, functions=FUNCTIONS
    )
    try:
        return bool(evaluator.eval(expression)), None
    except Exception as exc:  # any failure of a user expression: the original ran the node
        return True, f"{type(exc).__name__}: {exc}"
