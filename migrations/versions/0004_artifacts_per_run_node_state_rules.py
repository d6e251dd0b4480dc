"""Artifacts: one row per file per run; node_states brought in line with the mirror's rules of this revision.

Schema: ``uq_artifact_path`` becomes (execution_id, node_id, file_path, dagster_run_id), so a later run of an
execution that reports the same path adds its own row instead of replacing the earlier run's; an index on
``artifacts.dagster_run_id`` (the artifacts of one run).

Data (rows mirrored before this revision, so that they read as the mirror now writes them):
- a completed or skipped node no longer keeps an earlier attempt's ``error_message`` / ``error_type`` (the
  failures stay in their ``node_retry`` / ``node_failed`` events);
- ``duration_seconds`` is ``completed_at - started_at`` wherever both are set (completed nodes held Dagster's
  step time, a little shorter; it stays in their ``node_completed`` events).
Neither is undone by the downgrade. The downgrade keeps, of the rows sharing (execution, node, path), only the
most recent one (what the single-row rule kept before), then restores the three-column constraint.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import maestro_dagster.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KEY = ["execution_id", "node_id", "file_path"]
NEW_KEY = [*OLD_KEY, "dagster_run_id"]
CHUNK = 1000

_nodes = sa.table(
    "node_states",
    sa.column("id", sa.String()),
    sa.column("status", sa.String()),
    sa.column("error_message", sa.Text()),
    sa.column("error_type", sa.String()),
    sa.column("started_at", maestro_dagster.db.types.UTCDateTime(timezone=True)),
    sa.column("completed_at", maestro_dagster.db.types.UTCDateTime(timezone=True)),
    sa.column("duration_seconds", sa.Float()),
)
_artifacts = sa.table(
    "artifacts",
    sa.column("id", sa.String()),
    sa.column("execution_id", sa.String()),
    sa.column("node_id", sa.String()),
    sa.column("file_path", sa.String()),
    sa.column("created_at", maestro_dagster.db.types.UTCDateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("artifacts") as batch:
        batch.drop_constraint("uq_artifact_path", type_="unique")
        batch.create_unique_constraint("uq_artifact_path", NEW_KEY)
        batch.create_index(batch.f("ix_artifacts_dagster_run_id"), ["dagster_run_id"])

    conn = op.get_bind()
    conn.execute(
        _nodes.update()
        .where(_nodes.c.status.in_(("completed", "skipped")))
        .where(sa.or_(_nodes.c.error_message.is_not(None), _nodes.c.error_type.is_not(None)))
        .values(error_message=None, error_type=None)
    )
    timed = (
        sa.select(_nodes.c.id, _nodes.c.started_at, _nodes.c.completed_at, _nodes.c.duration_seconds)
        .where(_nodes.c.started_at.is_not(None), _nodes.c.completed_at.is_not(None))
        .order_by(_nodes.c.id)
    )
    changes = []
    for node_id, started, completed, duration in conn.execute(timed):
        seconds = round(max(0.0, (completed - started).total_seconds()), 6)  # the mirror's rule (reducer.finish)
        if duration != seconds:
            changes.append({"node_row": node_id, "seconds": seconds})
    update = _nodes.update().where(_nodes.c.id == sa.bindparam("node_row"))
    for start in range(0, len(changes), CHUNK):
        conn.execute(update.values(duration_seconds=sa.bindparam("seconds")), changes[start : start + CHUNK])


def downgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_artifacts.c.id, *(_artifacts.c[k] for k in OLD_KEY))
        .where(_artifacts.c.file_path.is_not(None))
        .order_by(_artifacts.c.created_at.desc(), _artifacts.c.id.desc())
    )
    kept: set[tuple[str, str, str]] = set()
    dropped = []
    for artifact_id, *key in rows:
        if tuple(key) in kept:
            dropped.append(artifact_id)
        kept.add(tuple(key))
    for start in range(0, len(dropped), CHUNK):
        conn.execute(_artifacts.delete().where(_artifacts.c.id.in_(dropped[start : start + CHUNK])))
    with op.batch_alter_table("artifacts") as batch:
        batch.drop_index(batch.f("ix_artifacts_dagster_run_id"))
        batch.drop_constraint("uq_artifact_path", type_="unique")
        batch.create_unique_constraint("uq_artifact_path", OLD_KEY)
