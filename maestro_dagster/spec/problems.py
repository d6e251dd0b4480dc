"""The result types of definition validation: ``SpecProblem``, ``DuplicateKey`` and ``ValidationReport``.

A problem says where (``location`` such as ``nodes.phase_design.retry_policy.max_attempts`` or ``edges[3]``,
the node id when there is one, the source line when the loader knows it), what is wrong and how to fix it
(``message``), and a stable short ``code`` that the API, the CLI and the tests can rely on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from maestro_dagster.errors import DefinitionError
from maestro_dagster.policy import ALLOWLIST_SETTING
from maestro_dagster.spec.models import WorkflowSpec

# The stable problem codes (documented; the API and CLI expose them).
PROBLEM_CODES: dict[str, str] = {
    "syntax": "the file is not valid YAML/JSON",
    "schema": "a field is missing, unknown or has the wrong type",
    "empty": "the definition (or its nodes) is empty",
    "duplicate_trigger": "two schedules/sensors of a workflow share a name",
    "self_trigger": "a workflow_completed sensor watches its own workflow",
    "bad_id": "a workflow or node id does not match ^[A-Za-z0-9_-]{1,255}$",
    "duplicate_id": "a node id is defined twice (ids are unique across nodes, on_failure and finally)",
    "handler_edge": "an edge or dependencies name an on_failure/finally node (handler nodes take no edges)",
    "duplicate_key": "a mapping key (other than a node id) is written twice",
    "unknown_edge_node": "an edge names a node that does not exist",
    "self_loop": "an edge goes from a node to itself",
    "duplicate_edge": "the same edge is written twice",
    "edge_condition": "an edge has a condition (conditions belong on the target node)",
    "cycle": "the graph has a cycle",
    "dependency_mismatch": "a node's dependencies differ from its incoming edges",
    "invalid_retry": "a retry policy value is out of range",
    "unknown_executor": "the executor is not a built-in kind or cannot be imported",
    "executor_not_allowed": f"the executor's module is outside {ALLOWLIST_SETTING}",
    "bad_config": "a built-in executor's config is missing something it needs",
    "bad_condition": "a condition does not parse or uses something the evaluator does not offer",
    "bad_for_each": "a for_each expression does not parse or reads a node that does not run before it, or the node "
    "also has an sla or is a handler",
    "name_collision": "two node ids map to the same Dagster name",
    "bad_cron": "a schedule's cron string is invalid",
    "bad_timezone": "a schedule's timezone is unknown",
    "bad_partition": "a partitioned schedule's start_date/catchup is wrong, or more than one schedule is partitioned",
    "bad_input": "an input declaration is invalid (name, type, default, enum, or required with a default)",
    "bad_concurrency": "a workflow's concurrency block or a node's pool is invalid (limit 1..1000, on_limit, name)",
    "bad_trigger_context": "a schedule's or sensor's initial_context does not satisfy the workflow's inputs",
    "too_large": "the definition exceeds a size limit (nodes, edges, document or config size; MAESTRO_MAX_*)",
    "too_deep": "the document nests too deeply, or the graph's longest path has too many nodes (MAESTRO_MAX_*)",
    "yaml_alias_budget": "a YAML document has more values than MAESTRO_MAX_YAML_VALUES once its aliases are expanded",
}


@dataclass(frozen=True)
class SpecProblem:
    """One problem in a definition."""

    location: str
    message: str
    code: str
    node_id: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = " ".join(self.location.split()) or "definition"  # one line, even for a key with a newline
        if self.line is not None:
            where += f" (line {self.line})"
        return f"{where}: {' '.join(self.message.split())} [{self.code}]"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DuplicateKey:
    """A mapping key the loader saw twice. ``parent`` is the location of the mapping ("" = top level)."""

    parent: str
    key: str
    lines: tuple[int, ...] = ()

    @property
    def location(self) -> str:
        return f"{self.parent}.{self.key}" if self.parent else self.key


@dataclass(frozen=True)
class ValidationReport:
    """Every problem of one definition; ``spec`` is set only when there are none."""

    workflow_id: str | None
    spec: WorkflowSpec | None
    errors: list[SpecProblem] = field(default_factory=list)
    source: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors and self.spec is not None

    @property
    def codes(self) -> list[str]:
        return [problem.code for problem in self.errors]

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow_id": self.workflow_id,
            "source": self.source,
            "ok": self.ok,
            "content_hash": self.spec.content_hash() if self.spec is not None else None,
            "errors": [problem.to_dict() for problem in self.errors],
        }

    def summary(self) -> str:
        """A human-readable multi-line summary: a header, then one line per problem."""
        name = self.workflow_id or "<unknown id>"
        origin = f" ({self.source})" if self.source else ""
        if self.ok:
            return f"workflow {name}{origin}: valid"
        lines = [f"workflow {name}{origin}: {len(self.errors)} problem(s)"]
        lines.extend(f"  - {problem}" for problem in self.errors)
        return "\n".join(lines)

    def raise_if_invalid(self) -> WorkflowSpec:
        """The spec, or ``DefinitionError`` listing every problem (``details['errors']``)."""
        if self.spec is not None and not self.errors:
            return self.spec
        raise DefinitionError(
            self.summary(),
            details={
                "workflow_id": self.workflow_id,
                "source": self.source,
                "errors": [problem.to_dict() for problem in self.errors],
            },
        )
