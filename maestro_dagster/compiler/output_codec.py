"""The JSON form of what ops pass each other, as the ``node_outputs`` table stores it (``resources.outputs``).

Ops pass ``NodeResult`` envelopes, lists of them (a ``for_each`` node's collected items), dicts holding them (the
fan-out op's dynamic outputs, ``compiler.fanout``) and plain JSON values. ``encode_output`` turns such a value into
tagged JSON and ``decode_output`` gives back an equal value:

- a ``NodeResult`` is ``{"$node_result": <its model_dump(mode="json")>}``;
- a tuple is ``{"$tuple": [...]}``;
- a dict whose only key starts with ``$`` (it would read as a tag) is ``{"$dict": {...}}``;
- lists, other dicts (string keys), strings, finite numbers, booleans and null are themselves.

Anything else (a set, bytes, a datetime, a non-string key, NaN) raises ``ExecutorError`` naming the step, the
output and where in the value it is: outputs must be JSON.
"""

from __future__ import annotations

import math
from typing import Any

from maestro_dagster.compiler.envelope import NodeResult
from maestro_dagster.errors import ExecutorError

NODE_RESULT_TAG = "$node_result"
TUPLE_TAG = "$tuple"
DICT_TAG = "$dict"


class _NotJson(Exception):
    def __init__(self, path: str, value: Any) -> None:
        super().__init__(path)
        self.path, self.value = path, value


def _encode(value: Any, path: str) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJson(path, value)
        return value
    if isinstance(value, NodeResult):
        return {NODE_RESULT_TAG: value.model_dump(mode="json")}
    if isinstance(value, list):
        return [_encode(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, tuple):
        return {TUPLE_TAG: [_encode(item, f"{path}[{i}]") for i, item in enumerate(value)]}
    if isinstance(value, dict):
        encoded: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _NotJson(f"{path} key {key!r}", key)
            encoded[key] = _encode(item, f"{path}[{key!r}]")
        if len(encoded) == 1 and next(iter(encoded)).startswith("$"):
            return {DICT_TAG: encoded}
        return encoded
    raise _NotJson(path, value)


def encode_output(value: Any, *, step_key: str, output_name: str) -> Any:
    """``value`` as tagged JSON; raises ``ExecutorError`` when some part of it is not JSON."""
    try:
        return _encode(value, "the value")
    except _NotJson as exc:
        kind = type(exc.value).__name__
        raise ExecutorError(
            f"Output {output_name!r} of step {step_key!r} cannot be stored: {exc.path} is a {kind} "
            f"({exc.value!r:.80}), not JSON. Node outputs are stored as JSON in Maestro's database (table "
            "node_outputs): an op must pass NodeResult values, lists and dicts of them, and JSON values (dicts with "
            "string keys, lists, strings, finite numbers, booleans, null).",
            details={"step_key": step_key, "output_name": output_name, "path": exc.path, "type": kind},
        ) from None


def decode_output(data: Any) -> Any:
    """The value ``encode_output`` encoded as ``data``."""
    if isinstance(data, list):
        return [decode_output(item) for item in data]
    if not isinstance(data, dict):
        return data
    if len(data) == 1:
        ((tag, inner),) = data.items()
        if tag == NODE_RESULT_TAG:
            return NodeResult.model_validate(inner)
        if tag == TUPLE_TAG:
            return tuple(decode_output(item) for item in inner)
        if tag == DICT_TAG:
            return {key: decode_output(item) for key, item in inner.items()}
    return {key: decode_output(item) for key, item in data.items()}
