"""The ``phase`` built-in executor: one SDLC phase, written as a real markdown artifact and scored.

The original's ``PhaseNodeExecutor`` handed a markdown brief to a team engine that did not exist, and
swallowed every error. This one writes the document itself, deterministically, from the requirement
(``global_context['requirement']``) and the upstream phases, and never swallows an error. It is
replaceable: a definition can name any allowlisted callable instead.

Config: ``phase`` (default: the node's name). Known phases (``SDLC_PHASES``) get phase-specific
deliverables; any other name gets a generic checklist.

Artifact: ``<ctx.artifacts_dir>/<phase>.md`` with a title and the sections "## Original Requirement",
"## Previous Phase Outputs" (JSON of each direct dependency's output without its ``artifacts`` list),
"## Available Artifacts", "## Previous Phase Contracts" and "## Deliverables".

Output: ``{phase, status: "completed", output: {summary, deliverables}, artifacts: [path], contracts:
[{phase, provides}], execution_time, quality_score}``. ``quality_score`` in [0, 1] depends only on the
content (see ``score_phase``); a missing requirement lowers it and does not fail the node.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maestro_dagster.errors import ExecutorError
from maestro_dagster.executors.base import ExecutorContext, NodeInput, NodeOutput, node_config

SDLC_PHASES = (
    "requirement_analysis",
    "design",
    "backend_development",
    "frontend_development",
    "testing",
    "review",
)

PROVIDES: dict[str, list[str]] = {
    "requirement_analysis": ["user_stories", "acceptance_criteria"],
    "design": ["components"],
    "backend_development": ["api_endpoints"],
    "frontend_development": ["screens"],
    "testing": ["test_plan"],
    "review": ["review_summary"],
}

NO_REQUIREMENT = "(none given)"
_STOPWORDS = frozenset(
    {
        "a", "an", "the", "to", "as", "i", "we", "user", "users", "want", "wants", "need", "needs", "should",
        "shall", "must", "can", "could", "be", "able", "and", "or", "of", "for", "with", "so", "that", "this",
        "these", "it", "is", "are", "on", "in", "into", "by", "from", "their", "my", "our", "system",
    }
)  # fmt: skip


_ACTOR_RE = re.compile(
    r"^(?:the |an? )?(?P<actor>[A-Za-z][A-Za-z -]{0,40}?)\s+"
    r"(?:can|could|should|must|shall|will|may|wants? to|needs? to|(?:is|are) able to)\s+"
    r"(?:be able to\s+)?(?P<action>.+)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Story:
    number: int
    sentence: str
    slug: str
    actor: str | None = None  # "user" in "Users can reset their password"
    action: str | None = None  # "reset their password"

    def as_story(self) -> str:
        if self.actor and self.action:
            return f"as a {self.actor}, I want to {self.action}"
        return f"requirement: {self.sentence}"

    def as_screen(self) -> str:
        return f"lets a {self.actor} {self.action}" if self.actor and self.action else self.sentence


def phase_executor(node_input: NodeInput, ctx: ExecutorContext) -> NodeOutput:
    """Write ``<artifacts_dir>/<phase>.md`` and return the phase's output (see the module docstring)."""
    started = time.perf_counter()
    config = node_config(node_input)
    phase = config.get("phase") or node_input.get("node_name") or ctx.node_id
    if not isinstance(phase, str):
        raise ExecutorError(f"Node '{ctx.node_id}': phase config: phase must be a string, got {phase!r}.")
    global_context = node_input.get("global_context") or {}
    requirement = str(global_context.get("requirement") or "").strip()
    dependency_outputs: Mapping[str, Any] = node_input.get("dependency_outputs") or {}
    dependency_artifacts: Mapping[str, list[str]] = node_input.get("dependency_artifacts") or {}
    all_outputs: Mapping[str, Any] = node_input.get("all_outputs") or {}

    stories = requirement_stories(requirement)
    deliverables = phase_deliverables(phase, stories, all_outputs)
    contracts_in = {
        dep: out["contracts"]
        for dep, out in dependency_outputs.items()
        if isinstance(out, Mapping) and out.get("contracts")
    }
    artifacts_in = {dep: list(paths) for dep, paths in dependency_artifacts.items() if paths}

    sections = {
        "Original Requirement": requirement or NO_REQUIREMENT,
        "Previous Phase Outputs": _outputs_section(dependency_outputs),
        "Available Artifacts": "\n".join(
            f"- `{dep}`: `{path}`" for dep, paths in artifacts_in.items() for path in paths
        ),
        "Previous Phase Contracts": "\n".join(
            f"- `{dep}`: `{json.dumps(contracts, sort_keys=True, default=str)}`"
            for dep, contracts in contracts_in.items()
        ),
        "Deliverables": "\n".join(f"- [ ] {item}" for item in deliverables),
    }
    score = score_phase(
        requirement_given=bool(requirement),
        has_dependencies=bool(dependency_outputs),
        sections_filled={
            "requirement": bool(requirement),
            "outputs": bool(dependency_outputs),
            "artifacts": bool(artifacts_in),
            "contracts": bool(contracts_in),
            "deliverables": bool(deliverables),
        },
        substantive_deliverables=len(deliverables) if stories or dependency_outputs else 0,
        upstream_completed=[
            isinstance(out, Mapping) and out.get("status", "completed") == "completed"
            for out in dependency_outputs.values()
        ],
    )
    summary = (
        f"{phase}: {len(deliverables)} deliverable(s) from {len(stories)} requirement statement(s) and "
        f"{len(dependency_outputs)} upstream phase(s)."
    )
    header = [
        f"# Phase: {phase}",
        "",
        f"- Workflow: `{ctx.workflow_id}`",
        f"- Execution: `{ctx.execution_id}`",
        f"- Node: `{ctx.node_id}` (attempt {ctx.attempt})",
        f"- Quality score: {score}",
        "",
        f"> {summary}",
    ]
    body = [f"\n## {title}\n\n{content or '(none)'}" for title, content in sections.items()]
    path = _write_atomically(ctx.ensure_artifacts_dir() / f"{_file_name(phase)}.md", "\n".join(header + body) + "\n")
    ctx.log.info("node %s: phase %s wrote %s (quality %.3f)", ctx.node_id, phase, path, score)
    return {
        "phase": phase,
        "status": "completed",
        "output": {"summary": summary, "deliverables": deliverables},
        "artifacts": [str(path)],
        "contracts": [{"phase": phase, "provides": PROVIDES.get(phase, [f"{phase}_document"])}],
        "execution_time": round(time.perf_counter() - started, 4),
        "quality_score": score,
    }


def requirement_stories(requirement: str) -> list[Story]:
    """One story per sentence (or line / bullet) of the requirement."""
    parts = re.split(r"(?<=[.!?;])\s+|\n+", requirement)
    stories: list[Story] = []
    for part in parts:
        sentence = re.sub(r"^\s*(?:[-*\u2022]|\d+[.)])\s*", "", part).strip().rstrip(".;!")
        if sentence:
            number = len(stories) + 1
            match = _ACTOR_RE.match(sentence)
            actor = _singular(match["actor"].strip().lower()) if match else None
            action = match["action"].strip() if match else None
            stories.append(Story(number, sentence, _slug(sentence, number), actor, action))
    return stories


def phase_deliverables(phase: str, stories: list[Story], all_outputs: Mapping[str, Any]) -> list[str]:
    """The checklist of a phase: derived from the requirement's stories and the upstream phases' outputs."""
    if phase == "requirement_analysis":
        if not stories:
            return ["Clarify the requirement with the stakeholders: none was given"]
        return [f"User story US-{s.number}: {s.as_story()}" for s in stories] + [
            f"Acceptance criterion AC-{s.number}: given US-{s.number} is implemented, when it is exercised, then "
            f"it holds that {_lower_first(s.sentence)}"
            for s in stories
        ]
    if phase == "design":
        return [f"Component `{s.slug}`: implements US-{s.number} ({s.sentence})" for s in stories] + [
            "Component `api`: HTTP API in front of the feature components",
            "Component `storage`: persists the domain data",
        ]
    if phase == "backend_development":
        return [
            item
            for s in stories
            for item in (
                f"Endpoint `GET /api/{s.slug}`: read for US-{s.number}",
                f"Endpoint `POST /api/{s.slug}`: create/update for US-{s.number}",
            )
        ] + ["Endpoint `GET /health`: liveness probe"]
    if phase == "frontend_development":
        screens = [f"Screen `{s.slug.replace('-', ' ').title()}`: {s.as_screen()}" for s in stories]
        return [*screens, "Screen `Home`: navigation to every feature"]
    if phase == "testing":
        upstream = _upstream_deliverables(all_outputs, ("backend_development", "frontend_development"))
        plan = [f"Acceptance test AC-{s.number}: {s.sentence}" for s in stories]
        plan += [f"Test {item.split(':', 1)[0]}" for item in upstream]
        return plan or ["Smoke test: the build starts and answers its health check"]
    if phase == "review":
        phases = [out for out in all_outputs.values() if isinstance(out, Mapping) and "phase" in out]
        if not phases:
            return ["No upstream phase output to review"]
        return [
            f"Phase {out['phase']}: status {out.get('status', '?')}, "
            f"{len((out.get('output') or {}).get('deliverables') or [])} deliverable(s), "
            f"quality {out.get('quality_score', 'n/a')}"
            for out in phases
        ]
    if not stories:
        return [f"Document the outcome of phase {phase}"]
    return [f'{phase}: address "{s.sentence}"' for s in stories]


def score_phase(
    *,
    requirement_given: bool,
    has_dependencies: bool,
    sections_filled: Mapping[str, bool],
    substantive_deliverables: int,
    upstream_completed: list[bool],
) -> float:
    """A deterministic quality score in [0, 1].

    0.35 requirement given + 0.25 fraction of sections with content (upstream sections count only when the
    node has dependencies) + 0.2 deliverables (3 or more derived from the requirement or upstream count as
    full) + 0.2 fraction of upstream phases that completed (full when there are none).
    """
    applicable = {
        name: filled
        for name, filled in sections_filled.items()
        if has_dependencies or name not in ("outputs", "artifacts", "contracts")
    }
    section_fraction = sum(applicable.values()) / len(applicable) if applicable else 0.0
    deliverable_fraction = min(1.0, substantive_deliverables / 3)
    upstream_fraction = sum(upstream_completed) / len(upstream_completed) if upstream_completed else 1.0
    score = 0.35 * requirement_given + 0.25 * section_fraction + 0.2 * deliverable_fraction + 0.2 * upstream_fraction
    return round(max(0.0, min(1.0, score)), 3)


def _outputs_section(dependency_outputs: Mapping[str, Any]) -> str:
    blocks = []
    for dep, out in dependency_outputs.items():
        shown = {k: v for k, v in out.items() if k != "artifacts"} if isinstance(out, Mapping) else out
        blocks.append(f"### {dep}\n\n```json\n{json.dumps(shown, indent=2, sort_keys=True, default=str)}\n```")
    return "\n\n".join(blocks)


def _upstream_deliverables(all_outputs: Mapping[str, Any], phases: tuple[str, ...]) -> list[str]:
    items: list[str] = []
    for out in all_outputs.values():
        if isinstance(out, Mapping) and out.get("phase") in phases:
            items += [str(d) for d in (out.get("output") or {}).get("deliverables") or []]
    return items


def _slug(sentence: str, number: int) -> str:
    words = [w for w in re.findall(r"[a-z0-9]+", sentence.lower()) if w not in _STOPWORDS]
    return "-".join(words[:3]) or f"feature-{number}"


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def _file_name(phase: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", phase).strip(".") or "phase"


def _write_atomically(path: Path, content: str) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path.resolve()
