"""workflow_definitions.source_hash: what a re-sync of ``workflow_defs/`` compares to skip an unchanged file.

A nullable ``varchar(64)``: the sha256 of a file's bytes and of the policy it was validated under, set by
``maestro defs sync`` (and the code location's sync on load) on the row the file stored; NULL for rows stored
through the API or before this revision (the next sync validates their file once and sets it). The downgrade
drops the column (a cache only: the next sync re-validates every file).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("workflow_definitions", sa.Column("source_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not batch mode's copy of the table, which the foreign keys of
    # workflow_definition_versions and workflow_executions would refuse to drop.
    op.drop_column("workflow_definitions", "source_hash")
