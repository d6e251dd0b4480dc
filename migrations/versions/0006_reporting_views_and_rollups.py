"""Reporting: the views analysts query (a contract, docs/schema.md) and the daily rollup tables.

Views: ``report_executions`` (one row per execution), ``report_summary`` (one row: all executions),
``report_workflow_stats`` (one row per workflow), ``report_node_stats`` (one row per workflow and node),
``report_failures`` (one row per failed node attempt). From this revision on a view's columns are only ever added,
never renamed or removed: a later revision that changes a view recreates it with every column it had.

Tables: ``daily_workflow_stats``, ``daily_node_stats``, ``daily_duration_buckets`` (the rollups the
``maestro_dagster.assets`` partitions build) and ``rollup_days`` (when each day was built, checked and pruned).

The two dialects differ only in three expressions: a duration in seconds (rounded to milliseconds, as SQLite's
``julianday`` is exact to about 50 microseconds, so both databases give the same figure), a field of a JSON
column, and percentiles (PostgreSQL's ``percentile_cont``; NULL on SQLite, which has none).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VIEWS = ("report_failures", "report_node_stats", "report_workflow_stats", "report_summary", "report_executions")


def _dialect_parts(postgresql: bool) -> dict[str, str]:
    if postgresql:
        duration = "CAST(ROUND(EXTRACT(EPOCH FROM (e.completed_at - e.started_at)), 3) AS DOUBLE PRECISION)"
        return {
            "duration": duration,
            "p50": f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {duration}) FILTER (WHERE e.status = 'completed')",
            "p95": f"percentile_cont(0.95) WITHIN GROUP (ORDER BY {duration}) FILTER (WHERE e.status = 'completed')",
            "error_type": "(ev.data ->> 'error_type')",
            "error": "(ev.data ->> 'error')",
            "attempt": "CAST(ev.data ->> 'attempts' AS INTEGER)",
        }
    return {
        "duration": "ROUND((julianday(e.completed_at) - julianday(e.started_at)) * 86400.0, 3)",
        "p50": "CAST(NULL AS REAL)",
        "p95": "CAST(NULL AS REAL)",
        "error_type": "json_extract(ev.data, '$.error_type')",
        "error": "json_extract(ev.data, '$.error')",
        "attempt": "CAST(json_extract(ev.data, '$.attempts') AS INTEGER)",
    }


def _stats_columns(p: dict[str, str]) -> str:
    """The execution statistics shared by ``report_summary`` and ``report_workflow_stats``."""
    return f"""
        COUNT(*) AS executions,
        SUM(CASE WHEN e.status = 'completed' THEN 1 ELSE 0 END) AS completed,
        SUM(CASE WHEN e.status = 'failed' THEN 1 ELSE 0 END) AS failed,
        SUM(CASE WHEN e.status = 'cancelled' THEN 1 ELSE 0 END) AS cancelled,
        SUM(CASE WHEN e.status = 'running' THEN 1 ELSE 0 END) AS running,
        SUM(CASE WHEN e.status = 'pending' THEN 1 ELSE 0 END) AS pending,
        SUM(CASE WHEN e.status = 'paused' THEN 1 ELSE 0 END) AS paused,
        CAST(100.0 * SUM(CASE WHEN e.status = 'completed' THEN 1 ELSE 0 END)
            / NULLIF(SUM(CASE WHEN e.status IN ('completed', 'failed', 'cancelled') THEN 1 ELSE 0 END), 0)
            AS DOUBLE PRECISION) AS success_rate,
        AVG(CASE WHEN e.status = 'completed' THEN {p["duration"]} END) AS avg_duration_seconds,
        {p["p50"]} AS p50_duration_seconds,
        {p["p95"]} AS p95_duration_seconds,
        MAX(CASE WHEN e.status = 'completed' THEN {p["duration"]} END) AS max_duration_seconds,
        MIN(e.created_at) AS first_created_at,
        MAX(e.created_at) AS last_created_at"""


def _views(postgresql: bool) -> dict[str, str]:
    p = _dialect_parts(postgresql)
    return {
        "report_executions": f"""
SELECT e.id AS execution_id, e.workflow_id, e.workflow_version, e.status,
       r.trigger_kind, COALESCE(r.runs, 0) AS runs,
       e.created_at, e.started_at, e.completed_at,
       {p["duration"]} AS duration_seconds,
       e.total_nodes,
       COALESCE(n.nodes_completed, 0) AS nodes_completed,
       COALESCE(n.nodes_failed, 0) AS nodes_failed,
       COALESCE(n.nodes_skipped, 0) AS nodes_skipped,
       COALESCE(n.nodes_blocked, 0) AS nodes_blocked,
       COALESCE(n.attempts, 0) AS attempts,
       COALESCE(n.retries, 0) AS retries,
       e.error_node_id, e.error_message
FROM workflow_executions e
LEFT JOIN (
    SELECT execution_id,
           SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) AS nodes_completed,
           SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS nodes_failed,
           SUM(CASE WHEN status = 'skipped' THEN 1 ELSE 0 END) AS nodes_skipped,
           SUM(CASE WHEN status = 'blocked' THEN 1 ELSE 0 END) AS nodes_blocked,
           SUM(attempt_count) AS attempts,
           SUM(CASE WHEN attempt_count > 1 THEN attempt_count - 1 ELSE 0 END) AS retries
    FROM node_states GROUP BY execution_id
) n ON n.execution_id = e.id
LEFT JOIN (
    SELECT execution_id, COUNT(*) AS runs, MIN(CASE WHEN kind = 'initial' THEN trigger END) AS trigger_kind
    FROM execution_runs GROUP BY execution_id
) r ON r.execution_id = e.id""",
        "report_summary": f"SELECT {_stats_columns(p)}\nFROM workflow_executions e",
        "report_workflow_stats": f"""
SELECT e.workflow_id, {_stats_columns(p)}
FROM workflow_executions e GROUP BY e.workflow_id""",
        "report_node_stats": """
SELECT e.workflow_id, n.node_id,
       COUNT(*) AS node_states,
       SUM(CASE WHEN n.attempt_count > 0 THEN 1 ELSE 0 END) AS runs,
       SUM(CASE WHEN n.status = 'completed' THEN 1 ELSE 0 END) AS completed,
       SUM(CASE WHEN n.status = 'failed' THEN 1 ELSE 0 END) AS failed,
       SUM(CASE WHEN n.status = 'skipped' THEN 1 ELSE 0 END) AS skipped,
       SUM(CASE WHEN n.status = 'blocked' THEN 1 ELSE 0 END) AS blocked,
       CAST(100.0 * SUM(CASE WHEN n.status = 'failed' THEN 1 ELSE 0 END)
           / NULLIF(SUM(CASE WHEN n.status IN ('completed', 'failed') THEN 1 ELSE 0 END), 0)
           AS DOUBLE PRECISION) AS failure_rate,
       SUM(n.attempt_count) AS attempts,
       SUM(CASE WHEN n.attempt_count > 1 THEN n.attempt_count - 1 ELSE 0 END) AS retries,
       AVG(n.duration_seconds) AS avg_duration_seconds,
       AVG(n.quality_score) AS avg_quality_score,
       MAX(CASE WHEN n.status = 'failed' THEN n.completed_at END) AS last_failed_at
FROM node_states n JOIN workflow_executions e ON e.id = n.execution_id
GROUP BY e.workflow_id, n.node_id""",
        "report_failures": f"""
SELECT ev.id AS event_id, ev.execution_id, e.workflow_id, ev.node_id,
       {p["error_type"]} AS error_type,
       COALESCE({p["error"]}, ev.message) AS error_message,
       {p["attempt"]} AS attempt,
       ev.timestamp AS failed_at, ev.dagster_run_id
FROM execution_events ev JOIN workflow_executions e ON e.id = ev.execution_id
WHERE ev.event_type = 'node_failed'""",
    }


def upgrade() -> None:
    day_pk = sa.Column("day", sa.Date(), nullable=False)
    op.create_table(
        "daily_workflow_stats",
        day_pk.copy(),
        sa.Column("workflow_id", sa.String(length=255), nullable=False),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in ("executions", "completed", "failed", "cancelled", "unfinished", "duration_count")
        ),
        sa.Column("duration_sum_seconds", sa.Float(), nullable=False),
        sa.Column("duration_max_seconds", sa.Float(), nullable=True),
        sa.Column("duration_p50_seconds", sa.Float(), nullable=True),
        sa.Column("duration_p95_seconds", sa.Float(), nullable=True),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in (
                "nodes_completed",
                "nodes_failed",
                "nodes_skipped",
                "nodes_blocked",
                "node_attempts",
                "node_retries",
                "runs",
            )
        ),
        sa.PrimaryKeyConstraint("day", "workflow_id", name=op.f("pk_daily_workflow_stats")),
    )
    op.create_table(
        "daily_node_stats",
        day_pk.copy(),
        sa.Column("workflow_id", sa.String(length=255), nullable=False),
        sa.Column("node_id", sa.String(length=255), nullable=False),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in ("node_states", "completed", "failed", "skipped", "blocked", "attempts", "retries")
        ),
        sa.Column("duration_count", sa.Integer(), nullable=False),
        sa.Column("duration_sum_seconds", sa.Float(), nullable=False),
        sa.Column("quality_count", sa.Integer(), nullable=False),
        sa.Column("quality_sum", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("day", "workflow_id", "node_id", name=op.f("pk_daily_node_stats")),
    )
    op.create_table(
        "daily_duration_buckets",
        day_pk.copy(),
        sa.Column("workflow_id", sa.String(length=255), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("le_seconds", sa.Float(), nullable=True),
        sa.Column("executions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "workflow_id", "bucket", name=op.f("pk_daily_duration_buckets")),
    )
    op.create_table(
        "rollup_days",
        day_pk.copy(),
        sa.Column("materialized_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("executions", sa.Integer(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("check_passed", sa.Boolean(), nullable=True),
        sa.Column("pruning_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_executions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_rollup_days")),
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name, body in _views(postgresql).items():
        op.execute(f"CREATE VIEW {name} AS {body}")


def downgrade() -> None:
    for name in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    for table in ("rollup_days", "daily_duration_buckets", "daily_node_stats", "daily_workflow_stats"):
        op.drop_table(table)
