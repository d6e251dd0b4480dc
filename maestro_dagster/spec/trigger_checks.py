"""Checks of a definition's schedules and sensors that its models cannot make alone (they span entries).

Run on the raw definition even when other parts are invalid: unique trigger names, no ``workflow_completed``
sensor watching its own workflow. Here rather than in ``triggers.py`` (the models), which ``models.py`` imports:
the problems it returns are ``problems.SpecProblem``, and ``problems`` imports the models.
"""

from __future__ import annotations

from typing import Any

from maestro_dagster.spec.problems import SpecProblem


def trigger_problems(raw: Any) -> list[SpecProblem]:
    """Checks on the raw definition's schedules and sensors (run even when other parts are invalid):
    unique names, no workflow_completed sensor watching its own workflow."""

    def entries(key: str) -> list[dict[str, Any]]:
        value = raw.get(key) if isinstance(raw, dict) else None
        return [e if isinstance(e, dict) else {} for e in value] if isinstance(value, list) else []

    problems: list[SpecProblem] = []
    seen: dict[str, str] = {}
    triggers = [("schedules", i, e.get("name") or f"schedule_{i}") for i, e in enumerate(entries("schedules"))]
    triggers += [("sensors", i, e.get("name") or f"{e.get('type')}_{i}") for i, e in enumerate(entries("sensors"))]
    for kind, index, written in triggers:
        location, name = f"{kind}[{index}]", str(written)
        if name in seen:
            problems.append(
                SpecProblem(
                    f"{location}.name",
                    f"{location}: name {name!r} is already used by {seen[name]}: give each schedule and sensor "
                    "its own name",
                    "duplicate_trigger",
                )
            )
        seen[name] = location
    for index, sensor in enumerate(entries("sensors")):
        if sensor.get("type") == "workflow_completed" and sensor.get("workflow_id") == raw.get("id"):
            problems.append(
                SpecProblem(
                    f"sensors[{index}].workflow_id",
                    f"sensors[{index}]: a workflow_completed sensor cannot watch its own workflow {raw.get('id')!r} "
                    "(each execution would start the next forever): name another workflow",
                    "self_trigger",
                )
            )
    return problems
