"""Initial schema: the five documented tables plus workflow_definition_versions and execution_runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import maestro_dagster.db.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workflow_definitions",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("workflow_type", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("nodes", sa.JSON(), nullable=False),
        sa.Column("edges", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("is_valid", sa.Boolean(), nullable=False),
        sa.Column("validation_errors", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=1024), nullable=True),
        sa.Column("created_at", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_definitions")),
    )
    op.create_index("ix_workflow_definitions_created_at", "workflow_definitions", ["created_at"])
    op.create_index(op.f("ix_workflow_definitions_name"), "workflow_definitions", ["name"])
    op.create_index(op.f("ix_workflow_definitions_workflow_type"), "workflow_definitions", ["workflow_type"])

    op.create_table(
        "workflow_definition_versions",
        sa.Column("workflow_id", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("is_valid", sa.Boolean(), nullable=False),
        sa.Column("validation_errors", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=1024), nullable=True),
        sa.Column("created_at", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflow_definitions.id"],
            name=op.f("fk_workflow_definition_versions_workflow_id_workflow_definitions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workflow_id", "version", name=op.f("pk_workflow_definition_versions")),
    )
    op.create_table(
        "workflow_executions",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("workflow_id", sa.String(length=255), nullable=False),
        sa.Column("workflow_version", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "running",
                "paused",
                "completed",
                "failed",
                "cancelled",
                name="workflow_status",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("current_phase", sa.String(length=255), nullable=True),
        sa.Column("initial_context", sa.JSON(), nullable=True),
        sa.Column("global_context", sa.JSON(), nullable=True),
        sa.Column("final_context", sa.JSON(), nullable=True),
        sa.Column("total_nodes", sa.Integer(), nullable=False),
        sa.Column("completed_nodes", sa.Integer(), nullable=False),
        sa.Column("failed_nodes", sa.Integer(), nullable=False),
        sa.Column("progress_percent", sa.Float(), nullable=False),
        sa.Column("started_at", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("paused_at", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_node_id", sa.String(length=255), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("created_at", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflow_definitions.id"],
            name=op.f("fk_workflow_executions_workflow_id_workflow_definitions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_executions")),
    )
    op.create_index("idx_execution_workflow_status", "workflow_executions", ["workflow_id", "status"])
    op.create_index("ix_workflow_executions_created_at", "workflow_executions", ["created_at"])
    op.create_index(op.f("ix_workflow_executions_started_at"), "workflow_executions", ["started_at"])
    op.create_index(op.f("ix_workflow_executions_status"), "workflow_executions", ["status"])
    op.create_index(op.f("ix_workflow_executions_workflow_id"), "workflow_executions", ["workflow_id"])

    op.create_table(
        "artifacts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("execution_id", sa.String(length=255), nullable=False),
        sa.Column("node_id", sa.String(length=255), nullable=False),
        sa.Column("artifact_type", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("file_path", sa.String(length=2048), nullable=True),
        sa.Column("uri", sa.String(length=2048), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("content_type", sa.String(length=255), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("dagster_run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["workflow_executions.id"],
            name=op.f("fk_artifacts_execution_id_workflow_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_artifacts")),
        sa.UniqueConstraint("execution_id", "node_id", "file_path", name="uq_artifact_path"),
    )
    op.create_index(op.f("ix_artifacts_execution_id"), "artifacts", ["execution_id"])
    op.create_index(op.f("ix_artifacts_node_id"), "artifacts", ["node_id"])

    op.create_table(
        "execution_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("execution_id", sa.String(length=255), nullable=False),
        sa.Column(
            "event_type",
            sa.Enum(
                "workflow_started",
                "workflow_completed",
                "workflow_failed",
                "workflow_cancelled",
                "workflow_paused",
                "workflow_resumed",
                "node_started",
                "node_completed",
                "node_failed",
                "node_retry",
                "node_skipped",
                "node_blocked",
                "artifact_created",
                name="event_type",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("node_id", sa.String(length=255), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("timestamp", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("dagster_run_id", sa.String(length=64), nullable=True),
        sa.Column("dagster_storage_id", sa.BigInteger(), nullable=True),
        sa.Column("dagster_event_part", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["workflow_executions.id"],
            name=op.f("fk_execution_events_execution_id_workflow_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_execution_events")),
        sa.UniqueConstraint("dagster_run_id", "dagster_storage_id", "dagster_event_part", name="uq_event_dagster"),
    )
    op.create_index("idx_event_execution_timestamp", "execution_events", ["execution_id", "timestamp"])
    op.create_index(op.f("ix_execution_events_event_type"), "execution_events", ["event_type"])
    op.create_index(op.f("ix_execution_events_execution_id"), "execution_events", ["execution_id"])
    op.create_index(op.f("ix_execution_events_node_id"), "execution_events", ["node_id"])
    op.create_index(op.f("ix_execution_events_timestamp"), "execution_events", ["timestamp"])

    op.create_table(
        "execution_runs",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("execution_id", sa.String(length=255), nullable=False),
        sa.Column("parent_run_id", sa.String(length=64), nullable=True),
        sa.Column("root_run_id", sa.String(length=64), nullable=True),
        sa.Column(
            "kind",
            sa.Enum("initial", "retry", "resume", name="run_kind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "running",
                "paused",
                "completed",
                "failed",
                "cancelled",
                name="run_status",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("dagster_status", sa.String(length=32), nullable=True),
        sa.Column("trigger", sa.String(length=64), nullable=True),
        sa.Column("started_at", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_storage_id", sa.BigInteger(), nullable=False),
        sa.Column("mirror_complete", sa.Boolean(), nullable=False),
        sa.Column("created_at", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["workflow_executions.id"],
            name=op.f("fk_execution_runs_execution_id_workflow_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_execution_runs")),
    )
    op.create_index(op.f("ix_execution_runs_execution_id"), "execution_runs", ["execution_id"])
    op.create_index(op.f("ix_execution_runs_root_run_id"), "execution_runs", ["root_run_id"])

    op.create_table(
        "node_states",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("execution_id", sa.String(length=255), nullable=False),
        sa.Column("node_id", sa.String(length=255), nullable=False),
        sa.Column("node_name", sa.String(length=255), nullable=True),
        sa.Column("node_type", sa.String(length=64), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "ready",
                "running",
                "completed",
                "failed",
                "skipped",
                "blocked",
                name="node_status",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("run_attempt", sa.Integer(), nullable=False),
        sa.Column("max_retries", sa.Integer(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=True),
        sa.Column("outputs", sa.JSON(), nullable=True),
        sa.Column("started_at", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_type", sa.String(length=255), nullable=True),
        sa.Column("quality_score", sa.Float(), nullable=True),
        sa.Column("quality_threshold", sa.Float(), nullable=True),
        sa.Column("contract_fulfilled", sa.Boolean(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("last_run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", maestro_dagster.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["workflow_executions.id"],
            name=op.f("fk_node_states_execution_id_workflow_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_states")),
        sa.UniqueConstraint("execution_id", "node_id", name="uq_execution_node"),
    )
    op.create_index("idx_node_state_execution_status", "node_states", ["execution_id", "status"])
    op.create_index(op.f("ix_node_states_execution_id"), "node_states", ["execution_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_node_states_execution_id"), table_name="node_states")
    op.drop_index("idx_node_state_execution_status", table_name="node_states")

    op.drop_table("node_states")
    op.drop_index(op.f("ix_execution_runs_root_run_id"), table_name="execution_runs")
    op.drop_index(op.f("ix_execution_runs_execution_id"), table_name="execution_runs")

    op.drop_table("execution_runs")
    op.drop_index(op.f("ix_execution_events_timestamp"), table_name="execution_events")
    op.drop_index(op.f("ix_execution_events_node_id"), table_name="execution_events")
    op.drop_index(op.f("ix_execution_events_execution_id"), table_name="execution_events")
    op.drop_index(op.f("ix_execution_events_event_type"), table_name="execution_events")
    op.drop_index("idx_event_execution_timestamp", table_name="execution_events")

    op.drop_table("execution_events")
    op.drop_index(op.f("ix_artifacts_node_id"), table_name="artifacts")
    op.drop_index(op.f("ix_artifacts_execution_id"), table_name="artifacts")

    op.drop_table("artifacts")
    op.drop_index(op.f("ix_workflow_executions_workflow_id"), table_name="workflow_executions")
    op.drop_index(op.f("ix_workflow_executions_status"), table_name="workflow_executions")
    op.drop_index(op.f("ix_workflow_executions_started_at"), table_name="workflow_executions")
    op.drop_index("ix_workflow_executions_created_at", table_name="workflow_executions")
    op.drop_index("idx_execution_workflow_status", table_name="workflow_executions")

    op.drop_table("workflow_executions")
    op.drop_table("workflow_definition_versions")
    op.drop_index(op.f("ix_workflow_definitions_workflow_type"), table_name="workflow_definitions")
    op.drop_index(op.f("ix_workflow_definitions_name"), table_name="workflow_definitions")
    op.drop_index("ix_workflow_definitions_created_at", table_name="workflow_definitions")

    op.drop_table("workflow_definitions")
