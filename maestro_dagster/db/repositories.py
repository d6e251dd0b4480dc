"""The repository layer the original guide documents: ``RepositoryFactory(session)`` and its five repositories.

Every method takes the caller's session and never commits: the caller owns the transaction (use
``get_db()``). Inserts of mirrored events are idempotent (a replayed Dagster event is ignored).
"""

from __future__ import annotations

import builtins  # ``list`` in annotations after a repository's own ``list`` method
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from maestro_dagster.db.dialect import insert_ignore
from maestro_dagster.db.models import (
    Artifact,
    ExecutionEvent,
    NodeState,
    WorkflowDefinition,
    WorkflowDefinitionVersion,
    WorkflowExecution,
)
from maestro_dagster.db.types import utcnow
from maestro_dagster.errors import ConflictError, NotFoundError
from maestro_dagster.names import new_execution_id
from maestro_dagster.spec.inputs import with_defaults
from maestro_dagster.spec.models import WorkflowSpec
from maestro_dagster.spec.stored import stored_spec
from maestro_dagster.states import ACTIVE_STATUSES, EventType, NodeStatus, WorkflowStatus, calculate_progress


class DefinitionRecord(BaseModel):
    """What is stored for one version of a workflow definition (valid or not)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    description: str | None = None
    workflow_type: str = "custom"
    nodes: dict[str, Any]
    edges: list[Any]
    metadata: dict[str, Any] | None = None
    definition: dict[str, Any]
    content_hash: str
    is_valid: bool = True
    validation_errors: list[dict[str, Any]] = []
    source: str | None = None
    source_hash: str | None = None  # of the synced file's bytes and policy (``defs_store.sync_directory``)


class SyncedRow(BaseModel):
    """A valid definition stored from a file, as a re-sync compares it: where from, and the hash of that file."""

    model_config = ConfigDict(frozen=True)

    id: str
    version: int
    source: str
    source_hash: str


class NodeStateUpdate(BaseModel):
    """Fields to set on a node state; ``None`` leaves a field unchanged."""

    status: NodeStatus | None = None
    node_name: str | None = None
    node_type: str | None = None
    attempt_count: int | None = None
    max_retries: int | None = None
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_seconds: float | None = None
    error_message: str | None = None
    error_type: str | None = None
    quality_score: float | None = None
    quality_threshold: float | None = None
    contract_fulfilled: bool | None = None
    metadata: dict[str, Any] | None = None
    last_run_id: str | None = None


COMPILE_ERROR = "compile_error"


def _only_compile_errors(errors: list[dict[str, Any]] | None) -> bool:
    return bool(errors) and all(isinstance(e, dict) and e.get("code") == COMPILE_ERROR for e in errors or [])


class WorkflowRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, record: DefinitionRecord) -> tuple[WorkflowDefinition, bool]:
        """Store a definition; a new version only when its content hash changed. Returns (row, changed)."""
        row = self.session.get(WorkflowDefinition, record.id)
        if row is not None and row.content_hash == record.content_hash:
            if row.source != record.source and record.source:
                row.source = record.source
            if record.source:  # the file's hash when synced from a file, none when posted through the API
                row.source_hash = record.source_hash
            if record.is_valid and _only_compile_errors(row.validation_errors):
                self._set_validity(row, True, [])  # stored again: the code location tries to compile it again
            return row, False
        version = 1 if row is None else row.version + 1
        fields = record.model_dump(exclude={"id", "metadata"})
        if row is None:
            row = WorkflowDefinition(id=record.id, version=version, workflow_metadata=record.metadata, **fields)
            self.session.add(row)
        else:
            for key, value in fields.items():
                setattr(row, key, value)
            row.workflow_metadata = record.metadata
            row.version = version
        self.session.add(
            WorkflowDefinitionVersion(
                workflow_id=record.id,
                version=version,
                content_hash=record.content_hash,
                definition=record.definition,
                is_valid=record.is_valid,
                validation_errors=record.validation_errors,
                source=record.source,
            )
        )
        self.session.flush()
        return row, True

    def mark_uncompilable(self, workflow_id: str, content_hash: str, problem: dict[str, Any]) -> bool:
        """Mark the current version invalid because it could not be compiled into a job (``problem`` has code
        ``compile_error``). Nothing happens when a newer content was stored meanwhile; True when marked."""
        row = self.session.get(WorkflowDefinition, workflow_id)
        if row is None or row.content_hash != content_hash:
            return False
        self._set_validity(row, False, [problem])
        return True

    def _set_validity(self, row: WorkflowDefinition, valid: bool, errors: list[dict[str, Any]]) -> None:
        row.is_valid, row.validation_errors = valid, errors
        version = self.session.get(WorkflowDefinitionVersion, (row.id, row.version))
        if version is not None:
            version.is_valid, version.validation_errors = valid, errors
        self.session.flush()

    def synced_rows(self) -> builtins.list[SyncedRow]:
        """Every valid definition that a file synced and that nothing changed since (one query, no documents)."""
        stmt = select(
            WorkflowDefinition.id, WorkflowDefinition.version, WorkflowDefinition.source, WorkflowDefinition.source_hash
        ).where(WorkflowDefinition.is_valid.is_(True), WorkflowDefinition.source_hash.is_not(None))
        return [SyncedRow(id=i, version=v, source=s, source_hash=h) for i, v, s, h in self.session.execute(stmt) if s]

    def get(self, workflow_id: str) -> WorkflowDefinition | None:
        return self.session.get(WorkflowDefinition, workflow_id)

    def require(self, workflow_id: str) -> WorkflowDefinition:
        row = self.get(workflow_id)
        if row is None:
            raise NotFoundError(
                f"Workflow {workflow_id!r} not found. List the stored ones with `maestro defs list`.",
                details={"workflow_id": workflow_id},
            )
        return row

    def list(self, limit: int = 100, offset: int = 0, *, valid_only: bool = False) -> list[WorkflowDefinition]:
        stmt = select(WorkflowDefinition).order_by(WorkflowDefinition.created_at.desc(), WorkflowDefinition.id)
        if valid_only:
            stmt = stmt.where(WorkflowDefinition.is_valid.is_(True))
        return list(self.session.scalars(stmt.limit(limit).offset(offset)))

    def list_ids(self, *, valid_only: bool = True) -> builtins.list[str]:
        stmt = select(WorkflowDefinition.id).order_by(WorkflowDefinition.id)
        if valid_only:
            stmt = stmt.where(WorkflowDefinition.is_valid.is_(True))
        return list(self.session.scalars(stmt))

    def get_version(self, workflow_id: str, version: int) -> WorkflowDefinitionVersion | None:
        return self.session.get(WorkflowDefinitionVersion, (workflow_id, version))

    def list_versions(self, workflow_id: str) -> builtins.list[WorkflowDefinitionVersion]:
        stmt = select(WorkflowDefinitionVersion).where(WorkflowDefinitionVersion.workflow_id == workflow_id)
        return list(self.session.scalars(stmt.order_by(WorkflowDefinitionVersion.version)))

    def delete(self, workflow_id: str, *, with_executions: bool = False) -> bool:
        """Delete a definition and its versions. Refuses while executions exist unless ``with_executions``."""
        row = self.get(workflow_id)
        if row is None:
            return False
        count = self.session.scalar(
            select(func.count()).select_from(WorkflowExecution).where(WorkflowExecution.workflow_id == workflow_id)
        )
        if count and not with_executions:
            raise ConflictError(
                f"Workflow {workflow_id!r} has {count} execution(s); deleting it would delete their history. "
                "Pass with_executions=True (API: DELETE /api/workflows/{id}?with_executions=true) to delete both.",
                details={"workflow_id": workflow_id, "executions": count},
            )
        self.session.execute(delete(WorkflowExecution).where(WorkflowExecution.workflow_id == workflow_id))
        self.session.delete(row)
        self.session.flush()
        return True


class ExecutionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(
        self,
        workflow_id: str,
        initial_context: dict[str, Any] | None = None,
        *,
        execution_id: str | None = None,
        workflow_version: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> WorkflowExecution:
        """A PENDING execution with a pending node state for every node of the definition's version."""
        execution, node_states = self.new_rows(
            workflow_id, initial_context, execution_id=execution_id, workflow_version=workflow_version,
            metadata=metadata,
        )  # fmt: skip
        self.session.add(execution)
        for values in node_states:
            self.session.add(NodeState(**values))
        self.session.flush()
        return execution

    def new_rows(
        self,
        workflow_id: str,
        initial_context: dict[str, Any] | None = None,
        *,
        execution_id: str | None = None,
        workflow_version: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> tuple[WorkflowExecution, list[dict[str, Any]]]:
        """What ``create`` inserts, not added to the session: the execution, and its node states' column values."""
        version, spec = self._version_spec(workflow_id, workflow_version)
        initial_context = with_defaults(spec.inputs, initial_context)  # a Dagster UI launch records them too
        execution = WorkflowExecution(
            id=execution_id or new_execution_id(workflow_id),
            workflow_id=workflow_id,
            workflow_version=version,
            status=WorkflowStatus.PENDING,
            initial_context=initial_context or {},
            global_context=dict(initial_context or {}),
            total_nodes=len(spec.nodes),
            execution_metadata=metadata or {},
        )
        node_states = [
            {
                "execution_id": execution.id,
                "node_id": node_id,
                "node_name": node.name or node_id,
                "node_type": node.type,
                "status": NodeStatus.PENDING,
                "attempt_count": 0,
                "max_retries": spec.effective_retry(node_id).max_retries,
                "quality_threshold": node.effective_quality_threshold,
            }
            for node_id, node in spec.nodes.items()
        ]
        node_states += [  # failure handlers: node_type is their group, on_failure or finally (spec/handlers.py)
            {
                "execution_id": execution.id,
                "node_id": node_id,
                "node_name": node.name or node_id,
                "node_type": group,
                "status": NodeStatus.PENDING,
                "attempt_count": 0,
                "max_retries": spec.handler_spec(node_id).effective_retry(node_id).max_retries,
                "quality_threshold": node.effective_quality_threshold,
            }
            for node_id, (group, node) in spec.handlers.items()
        ]
        execution.total_nodes = len(node_states)
        return execution, node_states

    def spec_of(self, workflow_id: str, workflow_version: int | None = None) -> WorkflowSpec:
        """The typed definition of a version of the workflow (the latest when None), read once per transaction."""
        return self._version_spec(workflow_id, workflow_version)[1]

    def _version_spec(self, workflow_id: str, workflow_version: int | None) -> tuple[int, WorkflowSpec]:
        """(version, the typed definition of that version), read once per transaction: a catch-up creates many
        executions of the same definition in one. The latest version when ``workflow_version`` is None."""
        transaction = self.session.get_transaction()
        held = self.session.info.get("maestro_definition_specs")
        if transaction is None or held is None or held[0] is not transaction:
            held = self.session.info["maestro_definition_specs"] = (transaction, {})
        memo: dict[tuple[str, int | None], tuple[int, WorkflowSpec]] = held[1]
        key = (workflow_id, workflow_version)
        if key not in memo:
            definition = WorkflowRepository(self.session).require(workflow_id)
            version = workflow_version or definition.version
            stored = WorkflowRepository(self.session).get_version(workflow_id, version)
            document = stored.definition if stored is not None else definition.definition
            spec = stored_spec(workflow_id, version, document)
            memo[key] = (version, spec)
        return memo[key]

    def get(self, execution_id: str) -> WorkflowExecution | None:
        return self.session.get(WorkflowExecution, execution_id)

    def require(self, execution_id: str) -> WorkflowExecution:
        row = self.get(execution_id)
        if row is None:
            raise NotFoundError(f"Execution {execution_id!r} not found.", details={"execution_id": execution_id})
        return row

    def update_status(
        self,
        execution_id: str,
        status: WorkflowStatus | str,
        error: str | None = None,
        *,
        error_node_id: str | None = None,
        at: datetime | None = None,
    ) -> WorkflowExecution:
        """Set the status; RUNNING stamps started_at once, COMPLETED/FAILED/CANCELLED completed_at, PAUSED paused_at."""
        execution = self.require(execution_id)
        status = WorkflowStatus(status)
        at = at or utcnow()
        execution.status = status
        if status is WorkflowStatus.RUNNING:
            execution.started_at = execution.started_at or at
            execution.completed_at = None
            execution.paused_at = None
        elif status.is_terminal:
            execution.completed_at = at
        elif status is WorkflowStatus.PAUSED:
            execution.paused_at = at
        if error is not None:
            execution.error_message = error
        if error_node_id is not None:
            execution.error_node_id = error_node_id
        self.session.flush()
        return execution

    def update_progress(self, execution_id: str) -> WorkflowExecution:
        """Counts from node_states; progress against the definition's node count (not states seen so far)."""
        execution = self.require(execution_id)
        counts = dict(
            self.session.execute(
                select(NodeState.status, func.count())
                .where(NodeState.execution_id == execution_id)
                .group_by(NodeState.status)
            ).all()
        )
        if not execution.total_nodes:
            execution.total_nodes = sum(counts.values())
        execution.completed_nodes = counts.get(NodeStatus.COMPLETED, 0)
        execution.failed_nodes = counts.get(NodeStatus.FAILED, 0)
        execution.progress_percent = calculate_progress(execution.total_nodes, execution.completed_nodes)
        self.session.flush()
        return execution

    def list(
        self,
        *,
        workflow_id: str | None = None,
        statuses: Sequence[WorkflowStatus] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[WorkflowExecution]:
        stmt = select(WorkflowExecution)
        if workflow_id:
            stmt = stmt.where(WorkflowExecution.workflow_id == workflow_id)
        if statuses:
            stmt = stmt.where(WorkflowExecution.status.in_(list(statuses)))
        stmt = stmt.order_by(WorkflowExecution.created_at.desc(), WorkflowExecution.id.desc())
        return list(self.session.scalars(stmt.limit(limit).offset(offset)))

    def list_by_workflow(self, workflow_id: str, limit: int = 100) -> builtins.list[WorkflowExecution]:
        return self.list(workflow_id=workflow_id, limit=limit)

    def list_active(self) -> builtins.list[WorkflowExecution]:
        """RUNNING and PAUSED executions (the original's definition of active)."""
        return self.list(statuses=ACTIVE_STATUSES, limit=10_000)

    def delete(self, execution_id: str) -> bool:
        row = self.get(execution_id)
        if row is None:
            return False
        self.session.delete(row)
        self.session.flush()
        return True


class NodeStateRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create_or_update(
        self, execution_id: str, node_id: str, node_state: NodeStateUpdate | None = None, **fields: Any
    ) -> NodeState:
        """Upsert one node's state from a ``NodeStateUpdate`` (or keyword fields); None fields stay unchanged."""
        update = (node_state or NodeStateUpdate()).model_copy(update=fields)
        row = self.get_node(execution_id, node_id)
        if row is None:
            row = NodeState(execution_id=execution_id, node_id=node_id, node_name=node_id, attempt_count=0)
            self.session.add(row)
        for key, value in update.model_dump(exclude_none=True).items():
            setattr(row, "node_metadata" if key == "metadata" else key, value)
        if update.duration_seconds is None and row.started_at and row.completed_at:
            row.duration_seconds = max(0.0, (row.completed_at - row.started_at).total_seconds())
        self.session.flush()
        return row

    def get_by_execution(self, execution_id: str) -> list[NodeState]:
        stmt = select(NodeState).where(NodeState.execution_id == execution_id).order_by(NodeState.created_at)
        return list(self.session.scalars(stmt))

    def get_node(self, execution_id: str, node_id: str) -> NodeState | None:
        stmt = select(NodeState).where(NodeState.execution_id == execution_id, NodeState.node_id == node_id)
        return self.session.scalars(stmt).one_or_none()


class EventRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(
        self,
        execution_id: str,
        event_type: EventType | str,
        node_id: str | None = None,
        message: str | None = None,
        data: dict[str, Any] | None = None,
        *,
        timestamp: datetime | None = None,
        dagster_run_id: str | None = None,
        dagster_storage_id: int | None = None,
        dagster_event_part: int = 0,
    ) -> bool:
        """Insert one event; returns False (and changes nothing) if that Dagster event was already stored."""
        values = {
            "execution_id": execution_id,
            "event_type": EventType(event_type),
            "node_id": node_id,
            "message": message or f"{EventType(event_type).value}: {node_id or 'workflow'}",
            "data": data or {},
            "timestamp": timestamp or utcnow(),
            "dagster_run_id": dagster_run_id,
            "dagster_storage_id": dagster_storage_id,
            "dagster_event_part": dagster_event_part,
        }
        if dagster_storage_id is None:
            self.session.add(ExecutionEvent(**values))
            self.session.flush()
            return True
        return insert_ignore(self.session, ExecutionEvent, values)

    def list_by_execution(
        self, execution_id: str, limit: int = 1000, *, after_id: int | None = None
    ) -> list[ExecutionEvent]:
        """Events in the order they were mirrored (``id``); ``after_id`` resumes a stream."""
        stmt = select(ExecutionEvent).where(ExecutionEvent.execution_id == execution_id)
        if after_id is not None:
            stmt = stmt.where(ExecutionEvent.id > after_id)
        return list(self.session.scalars(stmt.order_by(ExecutionEvent.id).limit(limit)))

    def list_by_node(self, execution_id: str, node_id: str) -> list[ExecutionEvent]:
        stmt = select(ExecutionEvent).where(
            ExecutionEvent.execution_id == execution_id, ExecutionEvent.node_id == node_id
        )
        return list(self.session.scalars(stmt.order_by(ExecutionEvent.id)))


class ArtifactRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(
        self,
        execution_id: str,
        node_id: str,
        artifact_type: str = "file",
        name: str | None = None,
        file_path: str | None = None,
        content: str | None = None,
        metadata: dict[str, Any] | None = None,
        **fields: Any,
    ) -> Artifact:
        """Insert or refresh the artifact identified by (execution, node, file_path, ``dagster_run_id`` if given):
        the same path reported by another run is another row (``uq_artifact_path``)."""
        row = None
        run_id = fields.get("dagster_run_id")
        if file_path is not None:
            row = self.session.scalars(
                select(Artifact).where(
                    Artifact.execution_id == execution_id,
                    Artifact.node_id == node_id,
                    Artifact.file_path == file_path,
                    Artifact.dagster_run_id.is_(None) if run_id is None else Artifact.dagster_run_id == run_id,
                )
            ).one_or_none()
        if row is None:
            row = Artifact(execution_id=execution_id, node_id=node_id, file_path=file_path)
            self.session.add(row)
        row.artifact_type = artifact_type
        row.name = name or (file_path.rsplit("/", 1)[-1] if file_path else node_id)
        row.content = content
        row.artifact_metadata = metadata or {}
        for key, value in fields.items():
            setattr(row, key, value)
        self.session.flush()
        return row

    def list_by_execution(self, execution_id: str) -> list[Artifact]:
        stmt = select(Artifact).where(Artifact.execution_id == execution_id)
        return list(self.session.scalars(stmt.order_by(Artifact.created_at, Artifact.node_id)))

    def list_by_node(self, execution_id: str, node_id: str) -> list[Artifact]:
        stmt = select(Artifact).where(Artifact.execution_id == execution_id, Artifact.node_id == node_id)
        return list(self.session.scalars(stmt.order_by(Artifact.created_at)))


class RepositoryFactory:
    """``RepositoryFactory(session)`` with ``.workflow``, ``.execution``, ``.node_state``, ``.event``, ``.artifact``."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.workflow = WorkflowRepository(session)
        self.execution = ExecutionRepository(session)
        self.node_state = NodeStateRepository(session)
        self.event = EventRepository(session)
        self.artifact = ArtifactRepository(session)
