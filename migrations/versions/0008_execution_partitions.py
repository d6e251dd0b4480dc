"""workflow_executions.partition_key, partition_start, partition_end: the time window of a partitioned run.

A workflow with a partitioned schedule (``schedules: [{partitioned: true, ...}]``) runs once per time window; the
mirror records the window of each execution's run (Dagster's ``dagster/partition`` tag, the window from the
workflow's partitions) in these nullable columns, null for a run without a partition. The index
``idx_execution_workflow_partition`` (workflow_id, partition_key) finds a workflow's executions of a window. The
downgrade drops the index and the columns.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("workflow_executions", sa.Column("partition_key", sa.String(255), nullable=True))
    op.add_column("workflow_executions", sa.Column("partition_start", sa.String(64), nullable=True))
    op.add_column("workflow_executions", sa.Column("partition_end", sa.String(64), nullable=True))
    op.create_index("idx_execution_workflow_partition", "workflow_executions", ["workflow_id", "partition_key"])


def downgrade() -> None:
    op.drop_index("idx_execution_workflow_partition", table_name="workflow_executions")
    # ALTER TABLE ... DROP COLUMN on both databases (SQLite >= 3.35): a batch copy of the table would break the
    # reporting views that read it (0006)
    for column in ("partition_end", "partition_start", "partition_key"):
        op.execute(f"ALTER TABLE workflow_executions DROP COLUMN {column}")
