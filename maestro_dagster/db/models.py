"""SQLAlchemy models of Maestro's tables: the documented SQL contract (see docs/schema.md).

Tables are declared without a schema; on PostgreSQL the engine's ``search_path`` puts them in the
configured schema (``MAESTRO_DB_SCHEMA``, default ``maestro``), beside Dagster's tables in ``public``.
Python attribute names follow the original (``workflow_metadata`` for the ``metadata`` column, and so on).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from maestro_dagster.db.types import UTCDateTime, utcnow
from maestro_dagster.spec.models import DEFAULT_QUALITY_THRESHOLD
from maestro_dagster.states import EventType, NodeStatus, RequestStatus, RunKind, WorkflowStatus

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Bigint autoincrement on PostgreSQL; SQLite only autoincrements INTEGER PRIMARY KEY.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


def _enum(enum_cls: type[StrEnum], name: str) -> SAEnum:
    """A VARCHAR column holding the enum's lower-case *values* (not names), portable across backends."""
    return SAEnum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


def _uuid() -> str:
    return str(uuid.uuid4())


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, nullable=False)


class WorkflowDefinition(TimestampMixin, Base):
    """One row per workflow; ``version`` and ``content_hash`` are those of the latest stored content."""

    __tablename__ = "workflow_definitions"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    workflow_type: Mapped[str] = mapped_column(String(32), default="custom", index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    nodes: Mapped[dict[str, Any]] = mapped_column(JSON)
    edges: Mapped[list[Any]] = mapped_column(JSON)
    workflow_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    is_valid: Mapped[bool] = mapped_column(Boolean, default=True)
    validation_errors: Mapped[list[Any]] = mapped_column(JSON, default=list)
    source: Mapped[str | None] = mapped_column(String(1024))
    # sha256 of the synced file's bytes and validation policy (``defs_store.sync_directory`` skips it unchanged)
    source_hash: Mapped[str | None] = mapped_column(String(64))

    versions: Mapped[list[WorkflowDefinitionVersion]] = relationship(
        back_populates="workflow", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (Index("ix_workflow_definitions_created_at", "created_at"),)


class WorkflowDefinitionVersion(Base):
    """Every content version ever stored for a workflow (an execution records the version it ran)."""

    __tablename__ = "workflow_definition_versions"

    workflow_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("workflow_definitions.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    is_valid: Mapped[bool] = mapped_column(Boolean)
    validation_errors: Mapped[list[Any]] = mapped_column(JSON, default=list)
    source: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    workflow: Mapped[WorkflowDefinition] = relationship(back_populates="versions")


class WorkflowExecution(TimestampMixin, Base):
    __tablename__ = "workflow_executions"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(255), ForeignKey("workflow_definitions.id"), index=True)
    workflow_version: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[WorkflowStatus] = mapped_column(
        _enum(WorkflowStatus, "workflow_status"), default=WorkflowStatus.PENDING, index=True
    )
    current_phase: Mapped[str | None] = mapped_column(String(255))
    initial_context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    global_context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    final_context: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    total_nodes: Mapped[int] = mapped_column(Integer, default=0)
    completed_nodes: Mapped[int] = mapped_column(Integer, default=0)
    failed_nodes: Mapped[int] = mapped_column(Integer, default=0)
    progress_percent: Mapped[float] = mapped_column(Float, default=0.0)
    started_at: Mapped[datetime | None] = mapped_column(index=True)
    completed_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]
    error_message: Mapped[str | None] = mapped_column(Text)
    error_node_id: Mapped[str | None] = mapped_column(String(255))
    execution_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    # the time window of a partitioned run (0008): its dagster/partition key, start and end (ISO 8601)
    partition_key: Mapped[str | None] = mapped_column(String(255))
    partition_start: Mapped[str | None] = mapped_column(String(64))
    partition_end: Mapped[str | None] = mapped_column(String(64))

    node_states: Mapped[list[NodeState]] = relationship(
        back_populates="execution", cascade="all, delete-orphan", passive_deletes=True
    )
    events: Mapped[list[ExecutionEvent]] = relationship(
        back_populates="execution", cascade="all, delete-orphan", passive_deletes=True
    )
    artifacts: Mapped[list[Artifact]] = relationship(
        back_populates="execution", cascade="all, delete-orphan", passive_deletes=True
    )
    runs: Mapped[list[ExecutionRun]] = relationship(
        back_populates="execution", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        Index("idx_execution_workflow_status", "workflow_id", "status"),
        Index("ix_workflow_executions_created_at", "created_at"),
        # the workflow list's latest execution and success rate per workflow (0007, api.queries.workflow_activity)
        Index("idx_execution_workflow_created", "workflow_id", "created_at", "status"),
        Index("idx_execution_workflow_partition", "workflow_id", "partition_key"),  # 0008: a workflow's windows
    )


class ExecutionRun(TimestampMixin, Base):
    """A Dagster run belonging to an execution: the root run and each re-execution of it."""

    __tablename__ = "execution_runs"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    execution_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("workflow_executions.id", ondelete="CASCADE"), index=True
    )
    parent_run_id: Mapped[str | None] = mapped_column(String(64))
    root_run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[RunKind] = mapped_column(_enum(RunKind, "run_kind"), default=RunKind.INITIAL)
    status: Mapped[WorkflowStatus] = mapped_column(_enum(WorkflowStatus, "run_status"), default=WorkflowStatus.PENDING)
    dagster_status: Mapped[str | None] = mapped_column(String(32))
    trigger: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    last_storage_id: Mapped[int] = mapped_column(BigInteger, default=0)
    mirror_complete: Mapped[bool] = mapped_column(Boolean, default=False)

    execution: Mapped[WorkflowExecution] = relationship(back_populates="runs")


class NodeState(TimestampMixin, Base):
    __tablename__ = "node_states"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_uuid)
    execution_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("workflow_executions.id", ondelete="CASCADE"), index=True
    )
    node_id: Mapped[str] = mapped_column(String(255))
    node_name: Mapped[str | None] = mapped_column(String(255))
    node_type: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[NodeStatus] = mapped_column(_enum(NodeStatus, "node_status"), default=NodeStatus.PENDING)
    attempt_count: Mapped[int] = mapped_column(Integer, default=0)
    run_attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_retries: Mapped[int] = mapped_column(Integer, default=3)
    inputs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    outputs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    error_message: Mapped[str | None] = mapped_column(Text)
    error_type: Mapped[str | None] = mapped_column(String(255))
    quality_score: Mapped[float | None] = mapped_column(Float)
    quality_threshold: Mapped[float | None] = mapped_column(Float, default=DEFAULT_QUALITY_THRESHOLD)
    contract_fulfilled: Mapped[bool | None] = mapped_column(Boolean)
    node_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    last_run_id: Mapped[str | None] = mapped_column(String(64))

    execution: Mapped[WorkflowExecution] = relationship(back_populates="node_states")

    __table_args__ = (
        UniqueConstraint("execution_id", "node_id", name="uq_execution_node"),
        Index("idx_node_state_execution_status", "execution_id", "status"),
    )


class ExecutionEvent(Base):
    """One row per mirrored event. ``id`` increases in insertion order (streams resume ``after`` it)."""

    __tablename__ = "execution_events"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    execution_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("workflow_executions.id", ondelete="CASCADE"), index=True
    )
    event_type: Mapped[EventType] = mapped_column(_enum(EventType, "event_type"), index=True)
    node_id: Mapped[str | None] = mapped_column(String(255), index=True)
    message: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    dagster_run_id: Mapped[str | None] = mapped_column(String(64))
    dagster_storage_id: Mapped[int | None] = mapped_column(BigInteger)
    dagster_event_part: Mapped[int] = mapped_column(Integer, default=0)

    execution: Mapped[WorkflowExecution] = relationship(back_populates="events")

    __table_args__ = (
        UniqueConstraint("dagster_run_id", "dagster_storage_id", "dagster_event_part", name="uq_event_dagster"),
        Index("idx_event_execution_timestamp", "execution_id", "timestamp"),
    )


class Artifact(Base):
    __tablename__ = "artifacts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_uuid)
    execution_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("workflow_executions.id", ondelete="CASCADE"), index=True
    )
    node_id: Mapped[str] = mapped_column(String(255), index=True)
    artifact_type: Mapped[str] = mapped_column(String(64), default="file")
    name: Mapped[str] = mapped_column(String(512))
    description: Mapped[str | None] = mapped_column(Text)
    file_path: Mapped[str | None] = mapped_column(String(2048))
    uri: Mapped[str | None] = mapped_column(String(2048))
    content: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str | None] = mapped_column(String(255))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    artifact_metadata: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON)
    dagster_run_id: Mapped[str | None] = mapped_column(String(64), index=True)  # the run that reported it
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    execution: Mapped[WorkflowExecution] = relationship(back_populates="artifacts")

    # One row per file per run (0004): a later run reporting the same path adds a row instead of replacing one.
    __table_args__ = (
        UniqueConstraint("execution_id", "node_id", "file_path", "dagster_run_id", name="uq_artifact_path"),
    )


class ExecutionRequest(TimestampMixin, Base):
    """A request to start an execution, picked up by the workflow's ``request_queue`` sensor.

    Insert a row (``status`` defaults to ``pending``); the sensor launches it (the request id is the run key,
    so a request never starts twice) and records ``execution_id``, or sets ``error``.
    """

    __tablename__ = "execution_requests"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=_uuid)
    workflow_id: Mapped[str] = mapped_column(String(255), index=True)
    initial_context: Mapped[Any | None] = mapped_column(JSON)
    requested_by: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[RequestStatus] = mapped_column(
        _enum(RequestStatus, "request_status"), default=RequestStatus.PENDING, index=True
    )
    execution_id: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)


class NodeApproval(Base):
    """The decision on a ``human_review`` node of an execution (recorded through the API or CLI)."""

    __tablename__ = "node_approvals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=_uuid)
    execution_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("workflow_executions.id", ondelete="CASCADE"), index=True
    )
    node_id: Mapped[str] = mapped_column(String(255))
    approved: Mapped[bool] = mapped_column(Boolean)
    decided_by: Mapped[str | None] = mapped_column(String(255))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("execution_id", "node_id", name="uq_node_approval"),)


class ApiToken(Base):
    """A bearer token of the REST API (only its sha256 is stored) and the role it grants."""

    __tablename__ = "api_tokens"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class AuditLog(Base):
    """One row per mutating API call: who, what, on which target, when, and the outcome."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(255), index=True)
    role: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(512))
    outcome: Mapped[str] = mapped_column(String(16))
    status_code: Mapped[int] = mapped_column(Integer)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class DailyWorkflowStats(Base):
    """One day's statistics of one workflow (a rollup, ``maestro_dagster.reporting.rollups``): executions by the UTC
    day they were created, kept after retention removes their raw rows."""

    __tablename__ = "daily_workflow_stats"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    executions: Mapped[int] = mapped_column(Integer)
    completed: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    cancelled: Mapped[int] = mapped_column(Integer)
    unfinished: Mapped[int] = mapped_column(Integer)  # pending, running or paused when the day was rolled up
    duration_count: Mapped[int] = mapped_column(Integer)  # completed executions with both timestamps
    duration_sum_seconds: Mapped[float] = mapped_column(Float)
    duration_max_seconds: Mapped[float | None] = mapped_column(Float)
    duration_p50_seconds: Mapped[float | None] = mapped_column(Float)  # PostgreSQL only (NULL on SQLite)
    duration_p95_seconds: Mapped[float | None] = mapped_column(Float)
    nodes_completed: Mapped[int] = mapped_column(Integer)
    nodes_failed: Mapped[int] = mapped_column(Integer)
    nodes_skipped: Mapped[int] = mapped_column(Integer)
    nodes_blocked: Mapped[int] = mapped_column(Integer)
    node_attempts: Mapped[int] = mapped_column(Integer)
    node_retries: Mapped[int] = mapped_column(Integer)
    runs: Mapped[int] = mapped_column(Integer)


class DailyNodeStats(Base):
    """One day's statistics of one node of one workflow (a rollup, as ``daily_workflow_stats``)."""

    __tablename__ = "daily_node_stats"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    node_states: Mapped[int] = mapped_column(Integer)
    completed: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    skipped: Mapped[int] = mapped_column(Integer)
    blocked: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer)
    retries: Mapped[int] = mapped_column(Integer)
    duration_count: Mapped[int] = mapped_column(Integer)
    duration_sum_seconds: Mapped[float] = mapped_column(Float)
    quality_count: Mapped[int] = mapped_column(Integer)
    quality_sum: Mapped[float] = mapped_column(Float)


class DailyDurationBuckets(Base):
    """One day's histogram of completed executions' durations per workflow: ``executions`` with a duration
    <= ``le_seconds`` (cumulative, as Prometheus' ``le``; NULL ``le_seconds`` is ``+Inf``)."""

    __tablename__ = "daily_duration_buckets"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True)  # index into the boundaries, last is +Inf
    le_seconds: Mapped[float | None] = mapped_column(Float)
    executions: Mapped[int] = mapped_column(Integer)


class RollupDay(Base):
    """The state of one UTC day's rollups: when they were built and checked, and how far retention got."""

    __tablename__ = "rollup_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    materialized_at: Mapped[datetime | None]
    executions: Mapped[int] = mapped_column(Integer, default=0)  # raw executions the rollup was built from
    checked_at: Mapped[datetime | None]
    check_passed: Mapped[bool | None] = mapped_column(Boolean)
    pruning_started_at: Mapped[datetime | None]  # retention began removing this day's raw rows
    pruned_at: Mapped[datetime | None]  # ... and finished: the rollups are the record of the day from now on
    removed_executions: Mapped[int] = mapped_column(Integer, default=0)


class NodeOutput(Base):
    """What one op output passed downstream, as JSON (``maestro_dagster.resources.outputs``, the jobs' IO manager).

    A step of any process or machine reads its inputs here; a re-execution from failure reads the outputs its
    parent run made. ``mapping_key`` is the item of a dynamic (``for_each``) output, ``""`` for any other output.
    ``value`` is tagged JSON (``maestro_dagster.compiler.output_codec``)."""

    __tablename__ = "node_outputs"

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    step_key: Mapped[str] = mapped_column(String(512), primary_key=True)
    output_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    mapping_key: Mapped[str] = mapped_column(String(255), primary_key=True, default="", server_default="")
    value: Mapped[Any] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


MAESTRO_TABLES = frozenset(Base.metadata.tables)
