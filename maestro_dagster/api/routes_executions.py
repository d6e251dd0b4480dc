"""``/api/executions``: list (``since`` / ``until`` on ``created_at``, read by ``time_bound``), status (by
execution id or Dagster run id), events, artifacts (and their download: ``api.artifact_files``), and the actions
resume / cancel / pause / approve (each through Dagster or the tables, never a second engine)."""

from __future__ import annotations

from dataclasses import astuple
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from maestro_dagster import executions
from maestro_dagster.api import queries
from maestro_dagster.api.artifact_files import OCTET_STREAM, chunks, disposition, open_file
from maestro_dagster.api.auth import Principal
from maestro_dagster.api.deps import operator, read, settings_of, transport_of, viewer
from maestro_dagster.api.routing import GuardedRoute
from maestro_dagster.api.schemas import (
    MAX_BIGINT,
    ActionResponse,
    ApproveRequest,
    ArtifactResponse,
    EventResponse,
    ExecutionStatusResponse,
    ExecutionSummary,
    ResumeRequest,
)
from maestro_dagster.errors import ValidationError
from maestro_dagster.executions import Transport
from maestro_dagster.settings import Settings
from maestro_dagster.states import WorkflowStatus

router = APIRouter(prefix="/api/executions", tags=["executions"], route_class=GuardedRoute)
ACCEPTED = status.HTTP_202_ACCEPTED


ISO_EXAMPLE = "2024-05-01T00:00:00Z"


def _by(principal: Principal) -> str:
    return f"Maestro API user {principal.name}"


def _bad_bound(name: str, message: str) -> ValidationError:
    return ValidationError(
        f"The request is invalid: query.{name}: {message}",
        details={"errors": [{"location": f"query.{name}", "message": message}]},
    )


def time_bound(name: str, value: str | None) -> datetime | None:
    """A ``since`` / ``until`` query value as an aware UTC datetime (ISO 8601; a value without an offset is UTC, a
    date alone is its midnight), or ``ValidationError`` naming the parameter and the expected form."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except ValueError:
        hint = " (a '+' in a URL reads as a space: write the offset's '+' as %2B)" if " " in value.strip() else ""
        message = f"{value[:60]!r} is not an ISO 8601 datetime: send one such as {ISO_EXAMPLE}{hint}"
    except OverflowError:
        message = f"{value[:60]!r} is outside the range of datetimes once converted to UTC: send a nearer one"
    raise _bad_bound(name, message)


@router.get("", response_model=list[ExecutionSummary])
async def list_executions(
    request: Request,
    workflow_id: str | None = None,
    status_: WorkflowStatus | None = Query(None, alias="status"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_BIGINT),
    since: str | None = Query(
        None,
        description=f"Only executions created at or after this ISO 8601 datetime (UTC without offset): {ISO_EXAMPLE}",
    ),
    until: str | None = Query(
        None, description="Only executions created before this ISO 8601 datetime (after since when both are given)"
    ),
    _: Principal = Depends(viewer),
) -> list[ExecutionSummary]:
    start, end = time_bound("since", since), time_bound("until", until)
    if start is not None and end is not None and end <= start:
        raise ValidationError(
            f"The request is invalid: until ({end.isoformat()}) must be after since ({start.isoformat()}): "
            "since is inclusive and until exclusive, so this window holds no execution; swap them or widen it.",
            details={"errors": [{"location": "query.until", "message": "must be after query.since"}]},
        )
    state = status_.value if status_ else None
    return await read(request, queries.execution_summaries, workflow_id, state, limit, offset, start, end)


@router.get("/{execution_id}", response_model=ExecutionStatusResponse)
async def get_execution(execution_id: str, request: Request, _: Principal = Depends(viewer)) -> Response:
    # The answer is already the declared model: serialized here, not validated and serialized again by FastAPI.
    answer = await read(request, queries.execution_status, execution_id)
    return Response(answer.model_dump_json(), media_type="application/json")


@router.get("/{execution_id}/events", response_model=list[EventResponse])
async def get_events(
    execution_id: str,
    request: Request,
    after: int = Query(0, ge=0, le=MAX_BIGINT, description="Only events with an id above this"),
    limit: int = Query(1000, ge=1, le=10_000),
    _: Principal = Depends(viewer),
) -> list[EventResponse]:
    return await read(request, queries.execution_events, execution_id, after, limit)


@router.get("/{execution_id}/artifacts", response_model=list[ArtifactResponse])
async def get_artifacts(
    execution_id: str,
    request: Request,
    settings: Settings = Depends(settings_of),
    _: Principal = Depends(viewer),
) -> list[ArtifactResponse]:
    return await read(request, queries.execution_artifacts, execution_id, settings.artifact_roots)


@router.get(
    "/{execution_id}/artifacts/{artifact_id}/content",
    response_class=FileResponse,
    responses={200: {"content": {OCTET_STREAM: {}}}, 403: {}, 404: {}},
)
async def get_artifact_content(
    execution_id: str,
    artifact_id: str,
    request: Request,
    settings: Settings = Depends(settings_of),
    _: Principal = Depends(viewer),
) -> Response:
    """The file (streamed) or inline content of one artifact of the execution, as an attachment, when
    ``api.artifact_files``' rule allows it: 404 for an unknown row or a file that is gone, 403 outside the roots."""
    found = await read(request, queries.artifact_download, execution_id, artifact_id, settings.artifact_roots)
    headers = disposition(found.filename)
    if found.path is not None:
        # opened before answering (a file gone since the check is a 404, never a 5xx), the open handle streamed
        handle, size = await run_in_threadpool(open_file, found, artifact_id, execution_id)
        headers["Content-Length"] = str(size)
        return StreamingResponse(chunks(handle), media_type=found.media_type, headers=headers)
    return Response((found.content or "").encode("utf-8"), media_type=found.media_type, headers=headers)


@router.post("/{execution_id}/resume", response_model=ActionResponse, status_code=ACCEPTED)
def resume_execution(
    execution_id: str,
    body: ResumeRequest | None = None,
    settings: Settings = Depends(settings_of),
    transport: Transport = Depends(transport_of),
    _: Principal = Depends(operator),
) -> ActionResponse:
    """Re-execute from failure; with ``from_node``, replay that node and its descendants (also when completed)."""
    from_node = body.from_node if body is not None else None
    exec_id, run_id = astuple(executions.resume(settings, transport, execution_id, from_node))
    what = "re-execution from failure" if from_node is None else f"replay from node {from_node}"
    return ActionResponse(
        execution_id=exec_id, status="resuming", run_id=run_id, message=f"{what} launched as run {run_id}"
    )


@router.post("/{execution_id}/cancel", response_model=ActionResponse, status_code=ACCEPTED)
def cancel_execution(
    execution_id: str,
    settings: Settings = Depends(settings_of),
    transport: Transport = Depends(transport_of),
    principal: Principal = Depends(operator),
) -> ActionResponse:
    exec_id, run_id = astuple(executions.cancel(settings, transport, execution_id, _by(principal)))
    return ActionResponse(
        execution_id=exec_id, status="cancelling", run_id=run_id, message=f"termination of run {run_id} requested"
    )


@router.post("/{execution_id}/pause", response_model=ActionResponse, status_code=ACCEPTED)
def pause_execution(
    execution_id: str,
    settings: Settings = Depends(settings_of),
    transport: Transport = Depends(transport_of),
    principal: Principal = Depends(operator),
) -> ActionResponse:
    exec_id, run_id = astuple(executions.pause(settings, transport, execution_id, _by(principal)))
    return ActionResponse(
        execution_id=exec_id,
        status="pausing",
        run_id=run_id,
        message=f"run {run_id} is being stopped; resume continues from where it stopped",
    )


@router.post("/{execution_id}/nodes/{node_id}/approve", response_model=ActionResponse)
def approve_node(
    execution_id: str,
    node_id: str,
    body: ApproveRequest | None = None,
    settings: Settings = Depends(settings_of),
    principal: Principal = Depends(operator),
) -> ActionResponse:
    body = body or ApproveRequest()
    exec_id = executions.approve(settings, execution_id, node_id, body.approved, body.comment, principal.name)
    decision = "approved" if body.approved else "rejected"
    return ActionResponse(execution_id=exec_id, status=decision, message=f"node {node_id} {decision}")
