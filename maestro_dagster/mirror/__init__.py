"""The mirror: Dagster runs and step events of Maestro jobs, projected exactly once into Maestro's tables."""

from maestro_dagster.mirror.live import LiveMirror, mirrored_executor
from maestro_dagster.mirror.projector import MirrorResult, mirror_run
from maestro_dagster.mirror.sync import SyncReport, sync_runs

__all__ = ["LiveMirror", "MirrorResult", "SyncReport", "mirror_run", "mirrored_executor", "sync_runs"]
