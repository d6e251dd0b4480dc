"""node_outputs: what each op output passed downstream, as JSON, read by the steps that take it as input.

The jobs' IO manager (``maestro_dagster.resources.outputs.node_outputs_io_manager``) writes one row per output of
a step (run_id, step_key, output_name, mapping_key: the item of a dynamic ``for_each`` output, ``""`` for any
other) instead of pickling it under DAGSTER_HOME/storage, so a step on another machine reads its inputs from
Maestro's database, and a re-execution from failure reads the outputs of the run that made them (its parent).
``value`` is tagged JSON (``maestro_dagster.compiler.output_codec``); ``created_at`` is when it was written.
Retention deletes a pruned execution's rows with its runs. The downgrade drops the table.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import maestro_dagster.db.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "node_outputs",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("step_key", sa.String(512), nullable=False),
        sa.Column("output_name", sa.String(255), nullable=False),
        sa.Column("mapping_key", sa.String(255), server_default="", nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("created_at", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "step_key", "output_name", "mapping_key", name=op.f("pk_node_outputs")),
    )


def downgrade() -> None:
    op.drop_table("node_outputs")
