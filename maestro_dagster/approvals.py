"""Decisions on ``human_review`` nodes, read and written here only: recorded by the API or ``maestro approve``
(``record_decision``), read by the ``human_review`` executor (``decision_of``).

Both take the caller's session and do not commit.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from maestro_dagster.db.models import NodeApproval
from maestro_dagster.db.repositories import RepositoryFactory
from maestro_dagster.errors import ConflictError, NotFoundError


def decision_of(session: Session, execution_id: str, node_id: str) -> NodeApproval | None:
    """The decision recorded on (execution, node), or None while there is none."""
    return session.scalars(
        select(NodeApproval).where(NodeApproval.execution_id == execution_id, NodeApproval.node_id == node_id)
    ).one_or_none()


def record_decision(
    session: Session, execution_id: str, node_id: str, approved: bool, comment: str | None, actor: str
) -> NodeApproval:
    """Record (or replace) the decision; a waiting node picks it up within its poll interval."""
    node = RepositoryFactory(session).node_state.get_node(execution_id, node_id)
    if node is None:
        raise NotFoundError(f"Execution {execution_id} has no node {node_id!r}.")
    if node.node_type != "human_review":
        raise ConflictError(f"Node {node_id!r} is a {node.node_type} node, not a human_review node.")
    row = decision_of(session, execution_id, node_id)
    if row is None:
        row = NodeApproval(execution_id=execution_id, node_id=node_id)
        session.add(row)
    row.approved, row.comment, row.decided_by = approved, comment, actor
    session.flush()
    return row
