"""Jobs whose op outputs go through ``node_outputs_io_manager`` (importable by Dagster's step processes).

``job_with_db_outputs(raw)`` compiles a raw definition as the code location does, with the Maestro runtime and the
IO manager that keeps outputs in Maestro's database; ``reconstructable(raw)`` is the same job for ``execute_job``,
rebuilt in every step process (this directory is on their ``sys.path``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import JobDefinition, build_reconstructable_job
from dagster._core.definitions.reconstruct import ReconstructableJob

from maestro_dagster.compiler import build_job
from maestro_dagster.policy import DefinitionPolicy
from maestro_dagster.resources import maestro_runtime, node_outputs_io_manager
from maestro_dagster.spec import parse_definition

HERE = Path(__file__).resolve().parent


def job_with_db_outputs(raw: Mapping[str, Any]) -> JobDefinition:
    spec = parse_definition(dict(raw), policy=DefinitionPolicy.allowing("maestro_examples"))
    return build_job(spec, runtime_resource=maestro_runtime, extra_resources={"io_manager": node_outputs_io_manager})


def reconstructable(raw: Mapping[str, Any]) -> ReconstructableJob:
    return build_reconstructable_job(
        "_output_jobs",
        "job_with_db_outputs",
        reconstructable_args=(dict(raw),),
        reconstructor_working_directory=str(HERE),
    )
