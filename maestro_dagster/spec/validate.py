"""Validation of a raw workflow definition: every problem at once, never an exception for bad input.

``validate_definition`` first checks the size limits of :mod:`.limits` (nesting, document size, node and
edge counts: an iterative walk; a definition over one of them is refused there, before anything expensive
or recursive). It then combines pydantic's schema errors (turned into :class:`SpecProblem` with the node id
and a fix) with the whole-graph checks of :mod:`.checks`, :mod:`.graph` and :mod:`.node_checks`, which run
on a lenient reading of the raw dict even when pydantic rejected part of it; each is linear (or n log n)
in nodes + edges. ``parse_definition`` is the raising convenience.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from maestro_dagster.gc_tuning import collections_paused
from maestro_dagster.policy import DefinitionPolicy
from maestro_dagster.spec import checks, handlers, input_checks, node_checks
from maestro_dagster.spec.concurrency import MAX_CONCURRENCY_LIMIT, ConcurrencySpec
from maestro_dagster.spec.graph import check_depth
from maestro_dagster.spec.limits import check_config_sizes, check_counts, check_document, format_location, node_of
from maestro_dagster.spec.models import DefaultsSpec, EdgeSpec, NodeSpec, RetryPolicySpec, ScheduleSpec, WorkflowSpec
from maestro_dagster.spec.problems import DuplicateKey, SpecProblem, ValidationReport
from maestro_dagster.spec.trigger_checks import trigger_problems

_RETRY_HINTS = {
    "max_attempts": "use a whole number from 1 to 100 (1 means no retry)",
    "retry_delay_seconds": "use a number of seconds from 0 to 86400",
    "retry_on_failure": "use true or false",
    "exponential_backoff": "use true or false",
}
# Errors the lenient checks already report with a better message.
_SKIPPED_ERROR_TYPES = {("id", "string_pattern_mismatch"), ("[key]", "string_pattern_mismatch")}


def validate_definition(
    raw: Any,
    *,
    policy: DefinitionPolicy,
    source: str | None = None,
    duplicate_keys: Sequence[DuplicateKey] = (),
    check_imports: bool = True,
) -> ValidationReport:
    """Validate ``raw`` (the parsed YAML/JSON) under ``policy`` and report every problem.

    ``duplicate_keys`` comes from the loader (:func:`maestro_dagster.spec.loader.load_definition_file`), as
    duplicates are lost once a mapping is parsed. ``check_imports=False`` skips importing custom executors
    (the allowlist is still enforced). Python's garbage collector is paused meanwhile (the work is bounded by
    the size limits): a large definition allocates many short-lived objects, and the collector's passes over
    every live object of the process made validation superlinear.
    """
    with collections_paused():
        return _validate(raw, policy, source, duplicate_keys, check_imports)


def _validate(
    raw: Any, policy: DefinitionPolicy, source: str | None, duplicate_keys: Sequence[DuplicateKey], check_imports: bool
) -> ValidationReport:
    if not isinstance(raw, Mapping):
        shown = "nothing (empty document)" if raw is None else type(raw).__name__
        code = "empty" if raw is None else "schema"
        problem = SpecProblem(
            "", f"a definition must be a mapping with id, nodes and edges at the top level; got {shown}", code
        )
        return ValidationReport(None, None, [problem], source)

    limits = policy.limits
    # Limits first, before anything expensive or recursive (pydantic, the graph): an iterative walk.
    blocking = check_counts(raw, limits) + input_checks.input_count_problems(raw)
    document = check_document(raw, limits) if not blocking else None
    if document is not None and document.blocking:
        blocking = document.problems
    if blocking or document is None:
        hint = raw.get("id")
        return ValidationReport(hint if isinstance(hint, str) else None, None, list(blocking), source)

    view = checks.read_leniently(raw)
    problems: list[SpecProblem] = [_duplicate_problem(dup) for dup in duplicate_keys]
    problems += checks.check_ids(view)
    problems += document.problems
    problems += check_config_sizes(view.nodes, limits)

    spec: WorkflowSpec | None = None
    inputs = input_checks.input_problems(raw)  # replace pydantic's errors under 'inputs' (they name input + fix)
    problems += inputs
    try:
        spec = WorkflowSpec.model_validate(dict(raw))
    except PydanticValidationError as exc:
        errs = [e for e in exc.errors() if not (inputs and e["loc"][:1] == ("inputs",))]
        problems += [p for err in errs if (p := _schema_problem(err)) is not None]

    edge_problems = checks.check_edges(view)  # an edge to a handler node: handlers.handler_problems says why
    problems += [p for p in edge_problems if not handlers.is_handler_edge_problem(p, view, raw)]
    problems += checks.check_cycles(view.graph)
    problems += check_depth(view.graph, limits)
    problems += checks.check_dependencies(view)
    problems += node_checks.check_executors(view, policy.executors, check_imports=check_imports)
    problems += node_checks.check_conditions(view, limits)
    problems += checks.check_name_collisions(view)
    problems += handlers.handler_problems(raw, view, policy.executors, limits, check_imports=check_imports)
    problems += _name_problems(raw)
    problems += trigger_problems(dict(raw))
    problems += input_checks.trigger_context_problems(raw)
    if spec is not None and not problems:
        problems += _storage_problems(spec)

    errors = list(dict.fromkeys(problems))  # exact repeats only
    return ValidationReport(view.workflow_id, spec if not errors else None, errors, source)


def parse_definition(
    raw: Any,
    *,
    policy: DefinitionPolicy,
    source: str | None = None,
    duplicate_keys: Sequence[DuplicateKey] = (),
    check_imports: bool = True,
) -> WorkflowSpec:
    """The valid ``WorkflowSpec``, or ``DefinitionError`` listing every problem in ``details['errors']``."""
    return validate_definition(
        raw,
        policy=policy,
        source=source,
        duplicate_keys=duplicate_keys,
        check_imports=check_imports,
    ).raise_if_invalid()


# ---- helpers ---------------------------------------------------------------------------------------
def _duplicate_problem(dup: DuplicateKey) -> SpecProblem:
    lines = f" (lines {', '.join(map(str, dup.lines))})" if dup.lines else ""
    if dup.parent == "nodes":
        return SpecProblem(
            dup.location,
            f"node id {dup.key!r} is defined more than once{lines}: rename or remove the extra definitions "
            "(only the last one would be kept)",
            "duplicate_id",
            dup.key,
            dup.lines[0] if dup.lines else None,
        )
    where = f"in {dup.parent!r}" if dup.parent else "at the top level"
    return SpecProblem(
        dup.location,
        f"key {dup.key!r} is written more than once {where}{lines}: keep one (only the last one would be kept)",
        "duplicate_key",
        node_of(dup.location.split(".")),
        dup.lines[0] if dup.lines else None,
    )


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model whose field is at ``loc[-1]`` (for listing the allowed fields)."""
    model: type[BaseModel] | None = WorkflowSpec
    parts = list(loc[:-1])
    while parts and model is not None:
        head = parts.pop(0)
        if model is WorkflowSpec and head in ("nodes", "on_failure", "finally") and parts:
            parts.pop(0)
            model = NodeSpec
        elif model is WorkflowSpec and head in ("edges", "schedules") and parts:
            parts.pop(0)
            model = EdgeSpec if head == "edges" else ScheduleSpec
        elif head == "defaults":
            model = DefaultsSpec
        elif head == "retry_policy":
            model = RetryPolicySpec
        elif model is WorkflowSpec and head == "concurrency":
            model = ConcurrencySpec
        else:
            model = None
    return model


_CONCURRENCY_HINTS = {
    "limit": f"write the number of runs that may be in progress at once, a whole number from 1 to "
    f"{MAX_CONCURRENCY_LIMIT}, e.g. 'concurrency: {{limit: 2}}'",
    "on_limit": "write 'queue' (a launch past the limit waits) or 'skip' (it is not run, recorded cancelled)",
    "pool": "name a pool with 1 to 64 letters, digits, '_', '-' or '.', e.g. 'pool: gpu' (MAESTRO_POOLS sets its "
    "slots)",
}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _schema_problem(err: Mapping[str, Any]) -> SpecProblem | None:
    loc = tuple(err["loc"])
    kind = err["type"]
    last = loc[-1] if loc else ""
    if (str(last), kind) in _SKIPPED_ERROR_TYPES:
        return None
    location = format_location(loc)
    node_id = node_of(loc)
    who = f"node {node_id!r}: " if node_id is not None else ""
    field = format_location(loc[2:]) if node_id is not None else location
    msg = err["msg"][:1].lower() + err["msg"][1:]
    got = f" (got {_short(err['input'])})" if "input" in err and kind not in ("missing", "extra_forbidden") else ""

    if loc == ("nodes",) and kind in ("missing", "too_short"):
        return SpecProblem("nodes", "the definition has no nodes: add at least one under 'nodes'", "empty")
    if loc and loc[0] == "edges" and last == "condition" and len(loc) == 3:
        return SpecProblem(
            location,
            f"edges[{loc[1]}] has a condition {_short(err.get('input'))}: edges cannot carry conditions; put it "
            "on the target node as 'condition' (false -> the node is skipped)",
            "edge_condition",
        )
    if loc and loc[0] == "schedules" and last in ("cron", "timezone") and kind == "value_error":
        reason = str(err.get("ctx", {}).get("error", msg))
        return SpecProblem(
            location,
            f"schedule {loc[1]}: {reason}",
            "bad_cron" if last == "cron" else "bad_timezone",
        )
    if loc == ("nodes",) and kind == "dict_type":
        return SpecProblem(
            "nodes",
            f"'nodes' must be a mapping of node id -> node fields{got}: write 'nodes: {{my_node: {{}}}}'",
            "schema",
        )
    if len(loc) == 2 and loc[0] == "edges" and kind == "model_type":
        return SpecProblem(
            location, f"{location} must be a mapping{got}: write it as {{source: a, target: b}}", "schema"
        )
    if kind == "extra_forbidden":
        model = _model_at(loc)
        allowed = f"; allowed fields: {', '.join(model.model_fields)}" if model else ""
        return SpecProblem(
            location, f"{who}unknown field {str(last)!r}: remove it or fix its spelling{allowed}", "schema", node_id
        )
    if kind == "missing":
        return SpecProblem(location, f"{who}required field {field!r} is missing: add it", "schema", node_id)
    if loc[:1] == ("concurrency",) or (node_id is not None and len(loc) == 3 and last == "pool"):
        hint = _CONCURRENCY_HINTS.get(str(last), "write it as {limit: 2, on_limit: queue}")
        prefix = f"{who}{field}: " if node_id is not None else ""  # the location names the workflow's field
        return SpecProblem(location, f"{prefix}{msg}{got}; {hint}", "bad_concurrency", node_id)
    if "retry_policy" in loc:
        hint = _RETRY_HINTS.get(str(last), "fix the value")
        return SpecProblem(location, f"{who}{field}: {msg}{got}; {hint}", "invalid_retry", node_id)
    if loc[:1] == ("nodes",) and len(loc) == 2:
        return SpecProblem(
            location, f"{who}{msg}{got}: a node must be a mapping of fields (use {{}} for defaults)", "schema", node_id
        )
    if last == "[key]":
        return SpecProblem(location, f"{msg}{got}: node ids are strings; quote the id", "schema", node_id)
    return SpecProblem(location, f"{who}{field or 'definition'}: {msg}{got}; fix the value", "schema", node_id)


def _name_problems(raw: Mapping[str, Any]) -> list[SpecProblem]:
    """An explicitly empty (or whitespace-only) workflow ``name`` is refused; an absent one defaults to the id."""
    name = raw.get("name")
    if isinstance(name, str) and not name.strip():
        return [
            SpecProblem(
                "name",
                f"the workflow name is empty ({name!r}): write a display name, e.g. 'name: Nightly build', or "
                "remove 'name' to use the workflow id",
                "schema",
            )
        ]
    return []


def _storage_problems(spec: WorkflowSpec) -> list[SpecProblem]:
    """Last guard: the parsed definition must be storable as strict JSON."""
    try:
        json.dumps(spec.to_storage(), allow_nan=False)
    except (TypeError, ValueError) as exc:
        return [SpecProblem("", f"the definition cannot be stored as JSON ({exc}): simplify its values", "schema")]
    return []
