"""A partitioned workflow's Dagster config: the job's ``PartitionedConfig``.

A Dagster job with partitions takes a ``PartitionedConfig`` instead of the ``ConfigMapping`` every other Maestro
job has. Each partition's run config is ``spec.partitions.partition_run_config`` (the partitioned schedule's
``initial_context`` plus ``partition_key``, ``partition_start`` and ``partition_end``): whoever launches a partition
(the schedule, ``maestro backfill``, the Dagster UI's backfill or launchpad) gets the same config, and the nodes
read the window in their ``global_context``.
"""

from __future__ import annotations

from functools import partial

from dagster import PartitionedConfig

from maestro_dagster.spec import WorkflowSpec
from maestro_dagster.spec.partitions import partition_run_config, partitioned_schedule, partitions_for


def partitioned_config(spec: WorkflowSpec) -> PartitionedConfig | None:
    """The job's config when the workflow has a partitioned schedule, else None (the job keeps its mapping)."""
    schedule = partitioned_schedule(spec)
    if schedule is None:
        return None
    return PartitionedConfig(
        partitions_def=partitions_for(schedule), run_config_for_partition_key_fn=partial(partition_run_config, spec)
    )
