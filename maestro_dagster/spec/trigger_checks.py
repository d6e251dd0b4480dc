"""Checks of a definition's schedules and sensors that its models cannot make alone (they span entries).

Run on the raw definition even when other parts are invalid: unique trigger names, no ``workflow_completed``
sensor watching its own workflow, partitioned schedules (``spec.partitions``). Here rather than in ``triggers.py``
(the models), which ``models.py`` imports: the problems it returns are ``problems.SpecProblem``, and ``problems``
imports the models.
"""

from __future__ import annotations

from typing import Any

from maestro_dagster.spec import partitions
from maestro_dagster.spec.problems import SpecProblem


def trigger_problems(raw: Any) -> list[SpecProblem]:
    """Checks on the raw definition's schedules and sensors (run even when other parts are invalid):
    unique names, no workflow_completed sensor watching its own workflow, partitioned schedules' fields."""

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
    problems += partition_problems(entries("schedules"))
    return problems


def partition_problems(schedules: list[dict[str, Any]]) -> list[SpecProblem]:
    """``partitioned``/``catchup``/``start_date`` of each schedule, and at most one partitioned schedule (a Dagster
    job has one partitions definition)."""
    problems: list[SpecProblem] = []
    partitioned: list[str] = []
    for index, schedule in enumerate(schedules):
        where = f"schedules[{index}]"
        name = str(schedule.get("name") or f"schedule_{index}")
        if schedule.get("partitioned") is True:
            partitioned.append(f"{where} ({name})")
            if schedule.get("start_date") is None:
                message = (f"{where}: a partitioned schedule needs start_date, its first window: add e.g. "
                           "start_date: '2026-11-01'")  # fmt: skip
                problems.append(SpecProblem(f"{where}.start_date", message, "bad_partition"))
                continue
            timezone = tz if isinstance(tz := schedule.get("timezone"), str) else "UTC"
            try:
                reason = partitions.problems_of(schedule, timezone)
            except Exception:  # an unknown timezone: reported as bad_timezone by the model
                reason = None
            if reason:
                problems.append(SpecProblem(f"{where}.start_date", f"{where}: {reason}", "bad_partition"))
            continue
        for field in ("catchup", "start_date"):
            if schedule.get(field) not in (None, False):
                message = (f"{where}: {field} applies only to a partitioned schedule: add partitioned: true, or "
                           f"remove {field}")  # fmt: skip
                problems.append(SpecProblem(f"{where}.{field}", message, "bad_partition"))
    if len(partitioned) > 1:
        message = (f"{len(partitioned)} schedules are partitioned ({', '.join(partitioned)}): a workflow has one set "
                   "of partitions; keep partitioned: true on one of them")  # fmt: skip
        problems.append(SpecProblem("schedules", message, "bad_partition"))
    return problems
