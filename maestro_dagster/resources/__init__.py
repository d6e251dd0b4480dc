"""Dagster resources of the code location: ``maestro_runtime``, the run context every op uses."""

from maestro_dagster.compiler.runtime import plain_runtime as maestro_runtime

__all__ = ["maestro_runtime"]
