"""Retention as a Dagster job and its opt-in schedule (a placeholder until retention lands: no job, no schedule)."""

from __future__ import annotations

from typing import Any


def retention_definitions() -> tuple[list[Any], list[Any]]:
    """(jobs, schedules) of retention: empty unless a retention horizon is configured."""
    return [], []
