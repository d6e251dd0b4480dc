"""Sensors declared in a definition, evaluated by a real dagster-daemon: a dropped file and a request row each
start one execution, which is mirrored (trigger 'sensor') and verifies clean."""

from __future__ import annotations

import pytest
from _e2e_procs import wait_for
from sqlalchemy import select

from maestro_dagster.db.models import ExecutionRequest, WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.states import RequestStatus, WorkflowStatus

pytestmark = pytest.mark.e2e


def _executions(workflow_id: str) -> list[WorkflowExecution]:
    with get_db() as session:
        return list(session.scalars(select(WorkflowExecution).where(WorkflowExecution.workflow_id == workflow_id)))


def _completed_with(predicate) -> WorkflowExecution | None:
    for execution in _executions("e2e_triggered"):
        if execution.status is WorkflowStatus.COMPLETED and predicate(execution):
            return execution
    return None


def test_file_and_request_row_start_mirrored_executions(e2e):
    inbox = e2e.work / "inbox"
    inbox.mkdir(exist_ok=True)
    dropped = inbox / "orders.txt"
    dropped.write_text("42 orders\n")
    path = str(dropped.resolve())
    by_file = wait_for(
        lambda: _completed_with(lambda e: ((e.initial_context or {}).get("file") or {}).get("path") == path),
        300,
        "the file sensor's execution to complete",
    )
    assert by_file.execution_metadata["trigger"] == "sensor"
    assert by_file.initial_context["file"]["size_bytes"] == len("42 orders\n")

    with get_db() as session:
        session.add(
            ExecutionRequest(
                id="e2e-req-1",
                workflow_id="e2e_triggered",
                initial_context={"requirement": "queued"},
                requested_by="e2e",
            )
        )

    def launched():
        with get_db() as session:
            row = session.get(ExecutionRequest, "e2e-req-1")
            return row if row.status is not RequestStatus.PENDING else None

    row = wait_for(launched, 180, "the request row to be picked up")
    assert row.status is RequestStatus.LAUNCHED, row.error
    by_request = wait_for(
        lambda: _completed_with(lambda e: e.id == row.execution_id), 300, "the requested execution to complete"
    )
    assert by_request.initial_context == {"requirement": "queued"}
    assert by_request.execution_metadata["trigger"] == "sensor"

    # the same file is not started twice; the same request never twice
    assert (
        sum(((e.initial_context or {}).get("file") or {}).get("path") == path for e in _executions("e2e_triggered"))
        == 1
    )
    assert e2e.maestro("mirror", "verify").returncode == 0
