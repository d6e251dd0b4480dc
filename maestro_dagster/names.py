"""Mapping of Maestro ids (workflow and node ids) to Dagster names, the code location's names, and execution ids.

Dagster names must match ``^[A-Za-z0-9_]+$`` and avoid Dagster's and Python's reserved words. The mapping
is deterministic and injective: an id that is already a safe name maps to itself; any other id is
sanitised and suffixed with 8 hex digits of its SHA-1, so two ids never share a name. Safe names never
contain ``__``, so an op definition name ``<job>__<node>`` is unique across the whole code location.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime

ID_PATTERN = r"^[A-Za-z0-9_-]{1,255}$"
ID_RE = re.compile(ID_PATTERN)
_SAFE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_HASHED_SUFFIX_RE = re.compile(r"_[0-9a-f]{8}$")

# Dagster's reserved names (dagster._core.definitions.utils.DISALLOWED_NAMES) and Python keywords.
RESERVED_NAMES = frozenset(
    {
        "context", "conf", "config", "meta", "arg_dict", "dict", "input_arg_dict", "output_arg_dict",
        "int", "str", "float", "bool", "input", "output", "type", "False", "None", "True", "and", "as",
        "assert", "async", "await", "break", "class", "continue", "def", "del", "elif", "else", "except",
        "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal", "not", "or",
        "pass", "raise", "return", "try", "while", "with", "yield",
    }
)  # fmt: skip

OP_SEPARATOR = "__"
DEFINITIONS_MODULE = "maestro_dagster.definitions"  # the code location's module
REPOSITORY_NAME = "maestro"  # its repository
LOCATION_NAME = "maestro"  # and the code location's name in the workspace
EXECUTION_ID_RE = re.compile(r"^exec_(?P<workflow_id>[A-Za-z0-9_-]+)_(?P<ts>\d{8}_\d{6})_(?P<suffix>[0-9a-f]{8})$")


# A ``for_each`` node (compiler/fanout.py) runs as two kinds of Dagster step: ``<alias>__for_each`` evaluates the
# item list (the node state ``<node>``) and ``<alias>[<key>]`` runs one item (the node state ``<node>[<key>]``).
# Dagster names never hold ``__`` and node ids never hold brackets, so neither can be another node's.
FOR_EACH_SUFFIX = f"{OP_SEPARATOR}for_each"
_MAPPED_STEP_RE = re.compile(r"^(?P<alias>[A-Za-z][A-Za-z0-9_]*)\[(?P<key>[A-Za-z0-9_]+)\]$")


def for_each_alias(alias: str) -> str:
    """The invocation name of a ``for_each`` node's fan-out op (its node's alias plus ``__for_each``)."""
    return f"{alias}{FOR_EACH_SUFFIX}"


def instance_id(node_id: str, key: str) -> str:
    """The node-state id of one item of a ``for_each`` node: ``node[key]`` (the key is the item's index)."""
    return f"{node_id}[{key}]"


def node_of_step(step_key: str, node_by_alias: Mapping[str, str]) -> str | None:
    """The node-state id of a Dagster step key: a node's own step, the fan-out step of a ``for_each`` node (its
    node), or one mapped item ``alias[key]`` (``node[key]``); None for a step of no node."""
    node_id = node_by_alias.get(step_key)
    if node_id is not None:
        return node_id
    if step_key.endswith(FOR_EACH_SUFFIX):
        return node_by_alias.get(step_key[: -len(FOR_EACH_SUFFIX)])
    mapped = _MAPPED_STEP_RE.match(step_key)
    if mapped is not None and (base := node_by_alias.get(mapped["alias"])) is not None:
        return instance_id(base, mapped["key"])
    return None


def base_node_id(node_state_id: str) -> str:
    """The node of a node-state id: ``x`` for ``x[3]``, the id itself otherwise."""
    return node_state_id.split("[", 1)[0]


def is_safe_name(value: str) -> bool:
    return (
        bool(_SAFE_RE.match(value))
        and OP_SEPARATOR not in value
        and value not in RESERVED_NAMES
        and not value.endswith("_")
        and not _HASHED_SUFFIX_RE.search(value)
    )


def dagster_name(maestro_id: str) -> str:
    """The Dagster name for a workflow or node id (see module docstring)."""
    if is_safe_name(maestro_id):
        return maestro_id
    digest = hashlib.sha1(maestro_id.encode("utf-8")).hexdigest()[:8]
    base = re.sub(r"[^A-Za-z0-9]+", "_", maestro_id).strip("_")
    if not base or not base[0].isalpha():
        base = f"n_{base}" if base else "n"
    return f"{base}_{digest}"


def job_name(workflow_id: str) -> str:
    return dagster_name(workflow_id)


def op_name(workflow_id: str, node_id: str) -> str:
    """The op *definition* name: unique across the code location."""
    return f"{job_name(workflow_id)}{OP_SEPARATOR}{dagster_name(node_id)}"


def new_execution_id(workflow_id: str, at: datetime | None = None, suffix: str | None = None) -> str:
    """``exec_{workflow_id}_{YYYYmmdd_HHMMSS}_{8 hex}`` (UTC), the original's format."""
    at = (at or datetime.now(UTC)).astimezone(UTC)
    return f"exec_{workflow_id}_{at:%Y%m%d_%H%M%S}_{suffix or secrets.token_hex(4)}"


def execution_id_for_run(workflow_id: str, run_id: str, created_at: datetime) -> str:
    """The execution id of a run launched without one (UI, ``dagster job execute``): derived from the run."""
    return new_execution_id(workflow_id, created_at, run_id.replace("-", "")[:8])
