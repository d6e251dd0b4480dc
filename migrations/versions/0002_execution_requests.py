"""execution_requests: requests to start an execution, picked up by request_queue sensors.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import maestro_dagster.db.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "execution_requests",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("workflow_id", sa.String(length=255), nullable=False),
        sa.Column("initial_context", sa.JSON(), nullable=True),
        sa.Column("requested_by", sa.String(length=255), nullable=True),
        sa.Column(
            "status",
            sa.Enum("pending", "launched", "error", name="request_status", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("execution_id", sa.String(length=255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_execution_requests")),
    )
    op.create_index(op.f("ix_execution_requests_status"), "execution_requests", ["status"])
    op.create_index(op.f("ix_execution_requests_workflow_id"), "execution_requests", ["workflow_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_execution_requests_workflow_id"), table_name="execution_requests")
    op.drop_index(op.f("ix_execution_requests_status"), table_name="execution_requests")
    op.drop_table("execution_requests")
