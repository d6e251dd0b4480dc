"""``DatabaseWorkflowContextStore``: the original's context store, backed by Maestro's tables, and working.

``load_context`` returns what ``save_context`` stored (the original crashed there). Unlike the original,
``save_context`` never creates a second execution row: the context's ``execution_id`` is the row's id.
Each method opens its own transaction (it is the caller-facing API, like the original).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select

from maestro_dagster.db.models import WorkflowExecution
from maestro_dagster.db.repositories import DefinitionRecord, NodeStateUpdate, RepositoryFactory
from maestro_dagster.db.session import get_db
from maestro_dagster.db.types import utcnow
from maestro_dagster.settings import Settings
from maestro_dagster.states import EventType, NodeStatus, WorkflowStatus


class NodeStateSnapshot(BaseModel):
    """The original engine's ``NodeState``."""

    node_id: str
    status: NodeStatus = NodeStatus.PENDING
    start_time: datetime | None = None
    end_time: datetime | None = None
    attempt_count: int = 0
    error_message: str | None = None
    output: dict[str, Any] | None = None
    artifacts: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class WorkflowContext(BaseModel):
    """The original engine's ``WorkflowContext``."""

    workflow_id: str
    execution_id: str
    node_states: dict[str, NodeStateSnapshot] = Field(default_factory=dict)
    node_outputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    artifacts: dict[str, list[str]] = Field(default_factory=dict)
    global_context: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    def get_completed_nodes(self) -> set[str]:
        return {n for n, s in self.node_states.items() if s.status is NodeStatus.COMPLETED}


class DatabaseWorkflowContextStore:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings

    # -- contexts -------------------------------------------------------------------------------
    def save_context(self, context: WorkflowContext) -> None:
        """Create the execution if needed, then upsert global context, node states, outputs and artifacts."""
        with get_db(self.settings, immediate=True) as session:
            repos = RepositoryFactory(session)
            if repos.execution.get(context.execution_id) is None:
                repos.execution.create(context.workflow_id, context.global_context, execution_id=context.execution_id)
            execution = repos.execution.require(context.execution_id)
            execution.global_context = context.global_context
            for node_id, state in context.node_states.items():
                repos.node_state.create_or_update(
                    context.execution_id,
                    node_id,
                    NodeStateUpdate(
                        status=state.status,
                        attempt_count=state.attempt_count,
                        started_at=state.start_time,
                        completed_at=state.end_time,
                        error_message=state.error_message,
                        outputs=context.node_outputs.get(node_id, state.output),
                        metadata=state.metadata or None,
                    ),
                )
            for node_id, paths in context.artifacts.items():
                for path in dict.fromkeys(paths):
                    repos.artifact.create(context.execution_id, node_id, "file", file_path=path)
            repos.execution.update_progress(context.execution_id)

    def load_context(self, execution_id: str) -> WorkflowContext | None:
        with get_db(self.settings) as session:
            repos = RepositoryFactory(session)
            execution = repos.execution.get(execution_id)
            if execution is None:
                return None
            artifacts: dict[str, list[str]] = {}
            for art in repos.artifact.list_by_execution(execution_id):
                if art.file_path:
                    artifacts.setdefault(art.node_id, []).append(art.file_path)
            states = {
                row.node_id: NodeStateSnapshot(
                    node_id=row.node_id,
                    status=row.status,
                    start_time=row.started_at,
                    end_time=row.completed_at,
                    attempt_count=row.attempt_count,
                    error_message=row.error_message,
                    output=row.outputs,
                    artifacts=artifacts.get(row.node_id, []),
                    metadata=row.node_metadata or {},
                )
                for row in repos.node_state.get_by_execution(execution_id)
            }
            return WorkflowContext(
                workflow_id=execution.workflow_id,
                execution_id=execution.id,
                node_states=states,
                node_outputs={n: s.output for n, s in states.items() if s.output is not None},
                artifacts=artifacts,
                global_context=execution.global_context or {},
                created_at=execution.created_at,
                updated_at=execution.updated_at,
            )

    def list_executions(self, workflow_id: str | None = None) -> list[str]:
        """Up to 1000 execution ids, newest first."""
        with get_db(self.settings) as session:
            stmt = select(WorkflowExecution.id)
            if workflow_id:
                stmt = stmt.where(WorkflowExecution.workflow_id == workflow_id)
            stmt = stmt.order_by(WorkflowExecution.created_at.desc(), WorkflowExecution.id.desc()).limit(1000)
            return list(session.scalars(stmt))

    def delete_context(self, execution_id: str) -> bool:
        with get_db(self.settings) as session:
            return RepositoryFactory(session).execution.delete(execution_id)

    # -- events and status ------------------------------------------------------------------------
    def log_event(
        self,
        execution_id: str,
        event_type: str | EventType,
        node_id: str | None = None,
        message: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Store an event of any type of the vocabulary (the original dropped the ones it did not map)."""
        with get_db(self.settings) as session:
            RepositoryFactory(session).event.create(execution_id, EventType(event_type), node_id, message, data)

    def get_events(self, execution_id: str) -> list[dict[str, Any]]:
        with get_db(self.settings) as session:
            return [
                {
                    "event_type": e.event_type.value,
                    "node_id": e.node_id,
                    "message": e.message,
                    "data": e.data,
                    "timestamp": e.timestamp.isoformat(),
                }
                for e in RepositoryFactory(session).event.list_by_execution(execution_id)
            ]

    def register_workflow(self, record: DefinitionRecord) -> str:
        """Store a definition (a new version only if its content changed); returns its id."""
        with get_db(self.settings) as session:
            row, _ = RepositoryFactory(session).workflow.create(record)
            return row.id

    def update_execution_status(
        self, execution_id: str, status: str | WorkflowStatus, error_message: str | None = None
    ) -> None:
        with get_db(self.settings) as session:
            RepositoryFactory(session).execution.update_status(execution_id, WorkflowStatus(status), error_message)

    def get_execution_status(self, execution_id: str) -> dict[str, Any] | None:
        with get_db(self.settings) as session:
            execution = RepositoryFactory(session).execution.get(execution_id)
            if execution is None:
                return None
            return {
                "execution_id": execution.id,
                "workflow_id": execution.workflow_id,
                "status": execution.status.value,
                "progress_percent": execution.progress_percent,
                "completed_nodes": execution.completed_nodes,
                "total_nodes": execution.total_nodes,
            }
