"""workflow_executions(workflow_id, created_at, status): the index the workflow list reads its executions through.

``GET /api/workflows`` shows each workflow's latest execution (by ``created_at``) and its 30-day success rate for
a whole page (up to 1,000 workflows) in two statements (``api.queries.workflow_activity``). With only the
``workflow_id`` and ``(workflow_id, status)`` indexes both read and sort every execution of the page's workflows;
on this index the latest is one backward probe per workflow and the counts a range per workflow, status read from
the index. The downgrade drops it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("idx_execution_workflow_created", "workflow_executions", ["workflow_id", "created_at", "status"])


def downgrade() -> None:
    op.drop_index("idx_execution_workflow_created", table_name="workflow_executions")
