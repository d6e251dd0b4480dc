"""The ``execution_requests`` queue: picking up rows for a workflow, and refusing rows nobody can run.

Functions take a session and do not commit (the sensor that calls them owns the transaction).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from maestro_dagster.db.models import ExecutionRequest, WorkflowDefinition
from maestro_dagster.errors import MaestroError
from maestro_dagster.names import new_execution_id
from maestro_dagster.states import RequestStatus


@dataclass(frozen=True)
class AcceptedRequest:
    request_id: str
    execution_id: str
    initial_context: dict[str, Any]


def take_requests(
    session: Session, workflow_id: str, limit: int, *, check: Callable[[dict[str, Any]], object] | None = None
) -> tuple[list[AcceptedRequest], list[str]]:
    """Pending requests of ``workflow_id``: valid ones get an execution id and become ``launched``,
    the others ``error``. ``check`` raises ``MaestroError`` for a context the workflow refuses (its inputs);
    its message becomes the row's error. Returns (accepted, refused request ids)."""
    stmt = (
        select(ExecutionRequest)
        .where(ExecutionRequest.workflow_id == workflow_id, ExecutionRequest.status == RequestStatus.PENDING)
        .order_by(ExecutionRequest.created_at, ExecutionRequest.id)
        .limit(limit)
    )
    accepted: list[AcceptedRequest] = []
    refused: list[str] = []
    for row in session.scalars(stmt):
        context = {} if row.initial_context is None else row.initial_context
        if not isinstance(context, dict):
            row.status = RequestStatus.ERROR
            row.error = (
                f"initial_context must be a JSON object (got {type(context).__name__}); "
                'insert e.g. {"requirement": "..."} or null'
            )
            refused.append(row.id)
            continue
        try:
            if check is not None:
                check(context)
        except MaestroError as exc:
            row.status, row.error = RequestStatus.ERROR, exc.message
            refused.append(row.id)
            continue
        row.status = RequestStatus.LAUNCHED
        row.execution_id = new_execution_id(workflow_id)
        row.error = None
        accepted.append(AcceptedRequest(row.id, row.execution_id, context))
    session.flush()
    return accepted, refused


def refuse_orphans(session: Session, queue_workflows: set[str]) -> list[str]:
    """Pending requests for workflows that are unknown, invalid, or accept no queued requests -> ``error``."""
    valid = dict(session.execute(select(WorkflowDefinition.id, WorkflowDefinition.is_valid)).all())
    refused = []
    stmt = select(ExecutionRequest).where(
        ExecutionRequest.status == RequestStatus.PENDING, ExecutionRequest.workflow_id.not_in(queue_workflows)
    )
    for row in session.scalars(stmt):
        if row.workflow_id not in valid:
            row.error = (
                f"unknown workflow {row.workflow_id!r}: no stored definition has this id (see `maestro defs list`)"
            )
        elif not valid[row.workflow_id]:
            row.error = f"workflow {row.workflow_id!r} is invalid and cannot run: fix its definition"
        else:
            row.error = (
                f"workflow {row.workflow_id!r} does not accept queued requests: add "
                "`sensors: [{type: request_queue, enabled: true}]` to its definition"
            )
        row.status = RequestStatus.ERROR
        refused.append(row.id)
    session.flush()
    return refused
