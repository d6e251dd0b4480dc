"""The workflow definition models (pydantic v2) and their small, pure graph helpers.

This module owns the *shape* of a definition: field names, types, defaults and per-field constraints
(``extra="forbid"`` everywhere, so a typo is an error). Checks that need the whole graph or the outside
world (cycles, unknown edge ends, executor imports, condition names) live in :mod:`.checks` and are run by
:func:`maestro_dagster.spec.validate.validate_definition`. A ``WorkflowSpec`` is only guaranteed to be a
valid graph when it was obtained from ``validate_definition`` / ``parse_definition``.
"""

from __future__ import annotations

import hashlib
import json
import re
import zoneinfo
from datetime import date, datetime
from typing import Annotated, Any, Literal, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    field_validator,
    model_serializer,
    model_validator,
)

from maestro_dagster.errors import DefinitionError
from maestro_dagster.names import ID_PATTERN
from maestro_dagster.policy import ALLOWLIST_SETTING, BUILTIN_EXECUTORS
from maestro_dagster.settings import POOL_PATTERN, QUEUE_PATTERN
from maestro_dagster.spec.concurrency import ConcurrencySpec
from maestro_dagster.spec.inputs import INPUT_NAME_PATTERN, InputSpec
from maestro_dagster.spec.sla import SLASpec
from maestro_dagster.spec.triggers import SensorSpec

MAX_FOR_EACH_ITEMS = 1000
QUEUE_HELP = (
    "The Celery queue of the steps (executor: celery); `maestro worker --queue Q` serves it. Default: 'dagster'"
)
"""The most items a ``for_each`` node runs (a longer list fails the node, naming the count)."""
NODE_TYPES: tuple[str, ...] = ("phase", "custom", "conditional", "human_review", "parallel_group")

HANDLER_GROUPS: tuple[str, str] = ("on_failure", "finally")
"""The top-level maps of failure-handler nodes, in the order they run; a handler's ``node_states.node_type``."""

NodeType = Literal["phase", "custom", "conditional", "human_review", "parallel_group"]
NodeId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]

DEFAULT_QUALITY_THRESHOLD = 0.7
"""A node's minimum ``quality_score`` when it sets no ``quality_threshold`` (docs/schema.md); declared only here."""

_CRON_FALLBACK_RE = re.compile(r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$")


def executor_ref_for(executor: str | None, node_type: str | None) -> str:
    """The executor a node runs: the explicit one, else ``phase``/``human_review`` by type, else ``noop``."""
    if executor:
        return executor
    if node_type in ("phase", "human_review"):
        return str(node_type)
    return "noop"


def is_valid_cron(cron: str) -> bool:
    """Dagster's own cron check when Dagster is importable, else a 5-field shape check."""
    try:
        from dagster._utils.schedules import is_valid_cron_string
    except Exception:  # pragma: no cover - dagster is a dependency; keep the spec usable without it
        return bool(_CRON_FALLBACK_RE.match(cron.strip()))
    return bool(is_valid_cron_string(cron))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RetryPolicySpec(_Model):
    """The original's ``RetryPolicy``; Dagster gets ``max_retries = max_attempts - 1`` when enabled."""

    max_attempts: int = Field(1, ge=1, le=100, description="Total attempts, 1..100 (1 = no retry).")
    retry_delay_seconds: float = Field(0, ge=0, le=86400, description="Delay before a retry, 0..86400 s.")
    retry_on_failure: bool = Field(False, description="Retries happen only when this is true.")
    exponential_backoff: bool = Field(False, description="Exponential wait: (2^n - 1) * delay in Dagster.")

    @property
    def retries_enabled(self) -> bool:
        return self.retry_on_failure and self.max_attempts > 1

    @property
    def max_retries(self) -> int:
        """Retries after the first attempt: ``max_attempts - 1`` when enabled, else 0 (``node_states.max_retries``)."""
        return self.max_attempts - 1 if self.retries_enabled else 0


class NodeSpec(_Model):
    """One node. Its id is its key under ``nodes``; ``name`` defaults to that id."""

    name: str | None = Field(None, description="Display name; defaults to the node id.")
    type: NodeType = Field("custom", description="The original's NodeType; only selects a default executor.")
    executor: str | None = Field(
        None,
        description=f"A built-in kind ({', '.join(BUILTIN_EXECUTORS)}) or 'package.module:function'"
        f" under {ALLOWLIST_SETTING}. Default: 'phase'/'human_review' by type, else 'noop'.",
    )
    config: dict[str, Any] = Field(default_factory=dict, description="Passed to the executor as node_config.")
    retry_policy: RetryPolicySpec | None = Field(None, description="Overrides defaults.retry_policy.")
    condition: str | None = Field(
        None, description="Expression over outputs and global_context; false -> node skipped."
    )
    for_each: str | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="Dynamic fan-out: an expression (the condition language) over outputs and global_context "
        f"giving a list of at most {MAX_FOR_EACH_ITEMS} items; the node runs once per item (node_input['item'], "
        "node state node_id[index]) and downstream nodes receive {'items': [each output]}.",
    )
    timeout_seconds: float | None = Field(None, gt=0, description="Overrides defaults.timeout_seconds.")
    dependencies: list[str] | None = Field(
        None, description="Optional; when given it must equal the sources of the node's incoming edges."
    )
    metadata: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None
    execution_mode: Literal["sequential", "parallel", "conditional"] | None = Field(
        None, description="Accepted for compatibility with the original; ignored."
    )
    quality_threshold: float | None = Field(None, ge=0, le=1, description="Minimum quality_score, 0..1.")
    sla: SLASpec | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="{max_duration_seconds, on_miss: warn|fail}: an attempt running longer records sla_missed.",
    )
    pool: str | None = Field(
        None,
        pattern=POOL_PATTERN,
        exclude_if=lambda v: v is None,
        description="A Dagster pool: the node's steps, across all runs, share its slots (MAESTRO_POOLS sets them).",
    )
    queue: str | None = Field(
        None,
        pattern=QUEUE_PATTERN,
        exclude_if=lambda v: v is None,
        description=QUEUE_HELP + " (overrides the workflow's).",
    )
    priority: int | None = Field(
        None, ge=0, le=9, exclude_if=lambda v: v is None, description="Celery priority 0..9 (higher first; default 5)."
    )

    @property
    def executor_ref(self) -> str:
        return executor_ref_for(self.executor, self.type)

    @property
    def effective_quality_threshold(self) -> float:
        """The node's ``quality_threshold``, else ``DEFAULT_QUALITY_THRESHOLD`` (also when written as null)."""
        return self.quality_threshold if self.quality_threshold is not None else DEFAULT_QUALITY_THRESHOLD


class EdgeSpec(_Model):
    """``source`` must finish before ``target`` starts. Conditions belong on the target node."""

    source: str
    target: str
    condition: None = Field(None, description="Always null (the original wrote it); use the node's condition.")


class ScheduleSpec(_Model):
    cron: str = Field(description="A 5-field cron string, e.g. '0 2 * * *'.")
    timezone: str = Field("UTC", description="An IANA timezone, e.g. 'Europe/Paris'.")
    initial_context: dict[str, Any] = Field(default_factory=dict, description="The runs' global_context.")
    enabled: bool = Field(False, description="Default status of the Dagster schedule.")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_]{1,64}$", description="Unique in the workflow.")
    partitioned: bool = Field(
        False,
        exclude_if=lambda v: not v,
        description="Time windows from the cron: each run gets partition_key/start/end (spec/partitions.py).",
    )
    catchup: bool = Field(
        False, exclude_if=lambda v: not v, description="Partitioned only: each tick also runs missed windows."
    )
    start_date: str | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="Partitioned only (required): the first window, an ISO date or datetime, e.g. '2026-11-01'.",
    )

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        if not is_valid_cron(value):
            raise ValueError(
                f"{value!r} is not a valid cron string: use 5 fields "
                "'minute hour day-of-month month day-of-week', e.g. '0 2 * * *'"
            )
        return value

    @field_validator("start_date", mode="before")
    @classmethod
    def _date_as_text(cls, value: Any) -> Any:
        """An unquoted YAML date (``start_date: 2026-11-01``) is kept as its ISO text."""
        return value.isoformat() if isinstance(value, date | datetime) else value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}: use an IANA name such as 'UTC' or 'Europe/Paris'") from exc
        return value


OnConditionError = Literal["run", "skip", "fail"]


class DefaultsSpec(_Model):
    retry_policy: RetryPolicySpec | None = None
    timeout_seconds: float | None = Field(None, gt=0)
    on_condition_error: OnConditionError = Field(
        "run",
        description="What a node does when its condition cannot be evaluated (a missing key, a value over the "
        "evaluator's bounds): 'run' (the original engine's rule: the node runs, a warning is logged), 'skip' (as "
        "if the condition were false) or 'fail' (the node fails, naming the condition and the error). A "
        "condition that runs past the node's timeout fails the node whatever this says.",
    )

    @model_serializer(mode="wrap")
    def _omit_default_rule(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """``on_condition_error: run`` (the default) is left out of the stored form, so definitions written
        before the field existed keep their content hash."""
        data = handler(self)
        if isinstance(data, dict) and data.get("on_condition_error") == "run":
            data.pop("on_condition_error")
        return cast("dict[str, Any]", data)


class WorkflowSpec(_Model):
    """A whole workflow definition: ``nodes`` keyed by node id, and ``edges``."""

    id: str = Field(pattern=ID_PATTERN, description="Stable workflow id; execution ids embed it.")
    name: str | None = Field(None, description="Display name; defaults to the id.")
    workflow_type: Literal["linear", "parallel", "custom"] = "custom"
    description: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    defaults: DefaultsSpec = Field(default_factory=DefaultsSpec)
    schedules: list[ScheduleSpec] = Field(default_factory=list)
    sensors: list[SensorSpec] = Field(default_factory=list, description="Sensors that start executions.")
    inputs: dict[Annotated[str, StringConstraints(pattern=INPUT_NAME_PATTERN)], InputSpec] = Field(
        default_factory=dict,
        exclude_if=lambda v: not v,
        json_schema_extra={"additionalProperties": False},
        description="Typed keys of the initial context (name -> {type, required, default, description, enum}); "
        "checked at every launch, defaults filled in. Other keys stay free.",
    )
    nodes: dict[NodeId, NodeSpec] = Field(min_length=1, json_schema_extra={"additionalProperties": False})
    edges: list[EdgeSpec] = Field(default_factory=list)
    sla: SLASpec | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="{max_duration_seconds, on_miss: warn|fail}: an execution running longer records sla_missed.",
    )
    concurrency: ConcurrencySpec | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="{limit, on_limit: queue|skip}: at most limit runs in progress; a further launch waits or is "
        "skipped (recorded cancelled).",
    )
    executor: Literal["local", "celery"] | None = Field(
        None,
        exclude_if=lambda v: v is None,
        description="Where the nodes run: 'local' (processes of the run's worker) or 'celery' (Celery workers, "
        "`maestro worker`). Default: the deployment's MAESTRO_DEFAULT_EXECUTOR.",
    )
    queue: str | None = Field(None, pattern=QUEUE_PATTERN, exclude_if=lambda v: v is None, description=QUEUE_HELP + ".")
    on_failure: dict[NodeId, NodeSpec] = Field(
        default_factory=dict,
        exclude_if=lambda v: not v,
        json_schema_extra={"additionalProperties": False},
        description="Failure handlers (node id -> node, no edges): they run in the same execution after the other "
        "nodes when one failed or the execution was cancelled, and receive node_input['failure'] (spec/handlers.py).",
    )
    finally_: dict[NodeId, NodeSpec] = Field(
        default_factory=dict,
        alias="finally",
        exclude_if=lambda v: not v,
        json_schema_extra={"additionalProperties": False},
        description="Nodes that always run last in the same execution (after on_failure), succeeded, failed or "
        "cancelled; they receive node_input['failure'] too. Ids are unique across nodes, on_failure and finally.",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, serialize_by_alias=True)

    @model_validator(mode="before")
    @classmethod
    def _fill_names(cls, data: Any) -> Any:
        """``name`` defaults to the id, for the workflow and for every node (done before freezing)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("name") is None and isinstance(data.get("id"), str):
            data["name"] = data["id"]
        for group in ("nodes", *HANDLER_GROUPS):
            nodes = data.get(group)
            if isinstance(nodes, dict):
                data[group] = {
                    key: ({**node, "name": str(key)} if isinstance(node, dict) and node.get("name") is None else node)
                    for key, node in nodes.items()
                }
        return data

    # ---- graph helpers (pure) -------------------------------------------------------------------
    @property
    def node_ids(self) -> list[str]:
        """Node ids in the order they were written."""
        return list(self.nodes)

    def _require(self, node_id: str) -> None:
        if node_id not in self.nodes:
            raise KeyError(f"workflow {self.id!r} has no node {node_id!r}")

    def upstream(self, node_id: str) -> list[str]:
        """Direct upstream node ids, in edge order."""
        self._require(node_id)
        return list(dict.fromkeys(e.source for e in self.edges if e.target == node_id))

    def downstream(self, node_id: str) -> list[str]:
        """Direct downstream node ids, in edge order."""
        self._require(node_id)
        return list(dict.fromkeys(e.target for e in self.edges if e.source == node_id))

    def ancestors(self, node_id: str) -> set[str]:
        """Every node that (transitively) precedes ``node_id``."""
        self._require(node_id)
        parents: dict[str, list[str]] = {}
        for edge in self.edges:
            parents.setdefault(edge.target, []).append(edge.source)
        seen: set[str] = set()
        stack = list(parents.get(node_id, ()))
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(parents.get(current, ()))
        return seen

    def topological_generations(self) -> list[list[str]]:
        """Groups of nodes that can run together (the original's execution order), written order inside."""
        order = {node_id: index for index, node_id in enumerate(self.nodes)}
        indegree = dict.fromkeys(self.nodes, 0)
        children: dict[str, list[str]] = {node_id: [] for node_id in self.nodes}
        for source, target in dict.fromkeys((e.source, e.target) for e in self.edges):
            if source in children and target in indegree:
                children[source].append(target)
                indegree[target] += 1
        generation = [n for n in self.nodes if indegree[n] == 0]
        generations: list[list[str]] = []
        while generation:
            generations.append(generation)
            following: list[str] = []
            for node_id in generation:
                for child in children[node_id]:
                    indegree[child] -= 1
                    if indegree[child] == 0:
                        following.append(child)
            generation = sorted(following, key=order.__getitem__)
        if sum(len(g) for g in generations) != len(self.nodes):
            raise DefinitionError(
                f"workflow {self.id!r} contains a cycle: validate it with validate_definition to see where",
                details={"workflow_id": self.id},
            )
        return generations

    def effective_retry(self, node_id: str) -> RetryPolicySpec:
        self._require(node_id)
        return self.nodes[node_id].retry_policy or self.defaults.retry_policy or RetryPolicySpec()

    def effective_timeout(self, node_id: str) -> float | None:
        self._require(node_id)
        node_timeout = self.nodes[node_id].timeout_seconds
        return node_timeout if node_timeout is not None else self.defaults.timeout_seconds

    # ---- failure handlers (spec/handlers.py) ---------------------------------------------------------
    @property
    def handlers(self) -> dict[str, tuple[str, NodeSpec]]:
        """Handler node id -> (its group, ``on_failure`` or ``finally``, and the node): on_failure first."""
        out = {node_id: (HANDLER_GROUPS[0], node) for node_id, node in self.on_failure.items()}
        out.update({node_id: (HANDLER_GROUPS[1], node) for node_id, node in self.finally_.items()})
        return out

    def handler_spec(self, node_id: str) -> WorkflowSpec:
        """This definition reduced to the handler ``node_id`` as its only node (no edges, no workflow SLA, no
        handlers): what the handler's op runs, with the defaults (retry policy, timeout) of the whole."""
        if node_id not in self.handlers:
            raise KeyError(f"workflow {self.id!r} has no handler node {node_id!r}")
        update: dict[str, Any] = {"nodes": {node_id: self.handlers[node_id][1]}, "edges": [], "sla": None}
        return self.model_copy(update={**update, "on_failure": {}, "finally_": {}})

    # ---- storage --------------------------------------------------------------------------------
    def to_storage(self) -> dict[str, Any]:
        """The whole definition as a JSON-able dict (node order preserved); ``from_storage`` reads it back."""
        return self.model_dump(mode="json", exclude_none=False)

    @classmethod
    def from_storage(cls, data: dict[str, Any]) -> WorkflowSpec:
        return cls.model_validate(data)

    def content_hash(self) -> str:
        """sha256 of the canonical JSON: independent of key order and formatting, changed by any content."""
        canonical = json.dumps(self.to_storage(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
