"""Schedules and sensors built from workflow definitions (``schedules:`` and ``sensors:``)."""

from maestro_dagster.triggers.build import all_triggers, schedule_name, sensor_name, triggers_for

__all__ = ["all_triggers", "schedule_name", "sensor_name", "triggers_for"]
