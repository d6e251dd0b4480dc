"""``/api/workflows``: list, create (validated, stored as a new version, code location reloaded), read,
replace, delete, versions, dry-run validation, triggers (``api.workflow_triggers``), and execute.

A summary (the list, and the answer of create and replace) carries the workflow's last execution and 30-day
success rate (``queries.workflow_activity``: two statements for a whole page)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from maestro_dagster import executions
from maestro_dagster.api.auth import Principal
from maestro_dagster.api.deps import (
    admin,
    gateway_of,
    in_transaction,
    operator,
    read,
    settings_of,
    transport_of,
    viewer,
)
from maestro_dagster.api.queries import WorkflowActivity, workflow_activity
from maestro_dagster.api.routing import GuardedRoute
from maestro_dagster.api.schemas import (
    MAX_BIGINT,
    BackfillRequest,
    BackfillResponse,
    ExecuteRequest,
    ExecuteResponse,
    TriggersResponse,
    ValidationResponse,
    WorkflowDetail,
    WorkflowResponse,
    WorkflowVersion,
)
from maestro_dagster.api.workflow_triggers import stored_triggers, with_states
from maestro_dagster.db.models import WorkflowDefinition
from maestro_dagster.db.repositories import RepositoryFactory
from maestro_dagster.defs_store import delete_workflow as delete_definition
from maestro_dagster.defs_store import replace_posted, store_posted, validate_posted
from maestro_dagster.executions import Transport, find_execution
from maestro_dagster.executions.backfill import launch_dagster_backfill
from maestro_dagster.executions.gateway import DagsterGateway
from maestro_dagster.names import LOCATION_NAME, REPOSITORY_NAME, job_name
from maestro_dagster.settings import Settings

router = APIRouter(prefix="/api/workflows", tags=["workflows"], route_class=GuardedRoute)
DEFINITION_EXAMPLE = {
    "id": "hello",
    "name": "Hello",
    "nodes": {"a": {"executor": "noop"}, "b": {"executor": "noop"}},
    "edges": [{"source": "a", "target": "b"}],
}


def summary(row: WorkflowDefinition, activity: WorkflowActivity | None = None) -> WorkflowResponse:
    activity = activity or WorkflowActivity()
    return WorkflowResponse(
        workflow_id=row.id,
        name=row.name,
        type=row.workflow_type,
        nodes=len(row.nodes or {}),
        edges=len(row.edges or []),
        version=row.version,
        valid=row.is_valid,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_execution_status=activity.last_status,
        last_execution_at=activity.last_at,
        success_rate=activity.success_rate,
    )


def detail(row: WorkflowDefinition) -> WorkflowDetail:
    """The original server's UI shape (nodes with position/data, smoothstep edges) plus the raw definition."""
    nodes = [
        {
            "id": node_id,
            "type": (node or {}).get("type", "custom"),
            "position": {"x": 0, "y": 0},
            "data": {
                "phase": (node or {}).get("name") or node_id,
                "label": str((node or {}).get("name") or node_id).replace("_", " ").title(),
                "status": "pending",
                "node_type": (node or {}).get("type", "custom"),
            },
        }
        for node_id, node in (row.nodes or {}).items()
    ]
    edges = [
        {
            "id": f"{e.get('source')}-{e.get('target')}",
            "source": e.get("source"),
            "target": e.get("target"),
            "type": "smoothstep",
        }
        for e in row.edges or []
        if isinstance(e, dict)
    ]
    return WorkflowDetail(
        workflow_id=row.id,
        name=row.name,
        type=row.workflow_type,
        version=row.version,
        valid=row.is_valid,
        errors=row.validation_errors or [],
        nodes=nodes,
        edges=edges,
        definition=row.definition,
        dagster_job=job_name(row.id),
        dagster_location=f"{REPOSITORY_NAME}@{LOCATION_NAME}",
    )


def _summaries(session: Session, limit: int, offset: int) -> list[WorkflowResponse]:
    rows = RepositoryFactory(session).workflow.list(limit=limit, offset=offset)
    activity = workflow_activity(session, [row.id for row in rows])
    return [summary(row, activity.get(row.id)) for row in rows]


def _stored(
    session: Session, store: Callable[..., tuple[WorkflowDefinition, bool]], *args: Any
) -> tuple[WorkflowResponse, bool]:
    """``store``'s row as a summary (with its executions, in the same transaction) and whether it changed."""
    row, changed = store(session, *args)
    session.flush()  # created_at / updated_at are set by the flush
    return summary(row, workflow_activity(session, [row.id]).get(row.id)), changed


def _detail(session: Session, workflow_id: str) -> WorkflowDetail:
    return detail(RepositoryFactory(session).workflow.require(workflow_id))


def _versions(session: Session, workflow_id: str) -> list[WorkflowVersion]:
    repos = RepositoryFactory(session)
    repos.workflow.require(workflow_id)
    return [
        WorkflowVersion(
            version=v.version,
            content_hash=v.content_hash,
            valid=v.is_valid,
            errors=v.validation_errors or [],
            source=v.source,
            created_at=v.created_at,
            definition=v.definition,
        )
        for v in repos.workflow.list_versions(workflow_id)
    ]


@router.get("", response_model=list[WorkflowResponse])
async def list_workflows(
    request: Request,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_BIGINT),
    _: Principal = Depends(viewer),
) -> list[WorkflowResponse]:
    return await read(request, _summaries, limit, offset)


@router.post("", response_model=WorkflowResponse, status_code=status.HTTP_201_CREATED)
def create_workflow(
    definition: dict[str, Any] = Body(..., examples=[DEFINITION_EXAMPLE]),
    settings: Settings = Depends(settings_of),
    gateway: DagsterGateway = Depends(gateway_of),
    _: Principal = Depends(admin),
) -> WorkflowResponse:
    answer, changed = in_transaction(settings, _stored, store_posted, definition, settings)
    if changed:
        gateway.reload_location()
    return answer


@router.post("/validate", response_model=ValidationResponse)
def validate_workflow(
    definition: dict[str, Any] = Body(..., examples=[DEFINITION_EXAMPLE]),
    settings: Settings = Depends(settings_of),
    _: Principal = Depends(viewer),
) -> ValidationResponse:
    report = validate_posted(definition, settings)
    return ValidationResponse(
        valid=report.ok, workflow_id=report.workflow_id, errors=[p.to_dict() for p in report.errors]
    )


@router.get("/{workflow_id}", response_model=WorkflowDetail)
async def get_workflow(workflow_id: str, request: Request, _: Principal = Depends(viewer)) -> WorkflowDetail:
    return await read(request, _detail, workflow_id)


@router.put("/{workflow_id}", response_model=WorkflowResponse)
def replace_workflow(
    workflow_id: str,
    definition: dict[str, Any] = Body(..., examples=[DEFINITION_EXAMPLE]),
    settings: Settings = Depends(settings_of),
    gateway: DagsterGateway = Depends(gateway_of),
    _: Principal = Depends(admin),
) -> WorkflowResponse:
    answer, changed = in_transaction(settings, _stored, replace_posted, workflow_id, definition, settings)
    if changed:
        gateway.reload_location()
    return answer


@router.delete("/{workflow_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_workflow(
    workflow_id: str,
    with_executions: bool = Query(False),
    settings: Settings = Depends(settings_of),
    gateway: DagsterGateway = Depends(gateway_of),
    _: Principal = Depends(admin),
) -> None:
    in_transaction(settings, functools.partial(delete_definition, with_executions=with_executions), workflow_id)
    gateway.reload_location()


@router.get("/{workflow_id}/versions", response_model=list[WorkflowVersion])
async def workflow_versions(
    workflow_id: str, request: Request, _: Principal = Depends(viewer)
) -> list[WorkflowVersion]:
    return await read(request, _versions, workflow_id)


@router.get("/{workflow_id}/triggers", response_model=TriggersResponse)
async def workflow_triggers(
    workflow_id: str,
    request: Request,
    gateway: DagsterGateway = Depends(gateway_of),
    _: Principal = Depends(viewer),
) -> TriggersResponse:
    """The workflow's schedules and sensors with the state Dagster reports (``unknown``, and ``state_error``
    saying why, when it cannot: still 200)."""
    triggers, problem = await read(request, stored_triggers, workflow_id)
    return await run_in_threadpool(with_states, workflow_id, triggers, problem, gateway)


@router.post("/{workflow_id}/execute", response_model=ExecuteResponse, status_code=status.HTTP_202_ACCEPTED)
def execute_workflow(
    workflow_id: str,
    body: ExecuteRequest | None = None,
    settings: Settings = Depends(settings_of),
    transport: Transport = Depends(transport_of),
    principal: Principal = Depends(operator),
) -> ExecuteResponse:
    body = body or ExecuteRequest()
    context = executions.initial_context(body.initial_context, body.requirement)
    launched = executions.start(settings, transport, workflow_id, context, trigger="api", actor=principal.name)
    execution = in_transaction(settings, lambda session: find_execution(session, launched.execution_id))
    return ExecuteResponse(
        execution_id=execution.id,
        workflow_id=workflow_id,
        status=execution.status.value,
        started_at=execution.started_at or execution.created_at,
        run_id=launched.run_id,
    )


@router.post("/{workflow_id}/backfill", response_model=BackfillResponse, status_code=status.HTTP_202_ACCEPTED)
def backfill_workflow(
    workflow_id: str,
    body: BackfillRequest,
    settings: Settings = Depends(settings_of),
    gateway: DagsterGateway = Depends(gateway_of),
    _: Principal = Depends(operator),
) -> BackfillResponse:
    """One run per window of the workflow's partitioned schedule between ``from`` and ``to``: Dagster's partition
    backfill, run by the daemon; each run is mirrored as an execution with its partition columns."""
    spec = in_transaction(settings, lambda session: RepositoryFactory(session).execution.spec_of(workflow_id))
    launched = launch_dagster_backfill(gateway, spec, body.from_, body.to, max_concurrent=body.max_concurrent)
    return BackfillResponse(
        backfill_id=launched.backfill_id,
        dagster_backfill_id=launched.dagster_backfill_id,
        workflow_id=workflow_id,
        partition_keys=launched.partition_keys,
        max_concurrent=body.max_concurrent,
    )
