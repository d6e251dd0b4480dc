"""Helpers shared by the mirror tests (tests/mirror, tests/cli): reading the mirrored rows, table snapshots, the CLI.

The definitions they run are built with ``tests/_defs.py``."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy import select

from maestro_dagster.db.models import Artifact, ExecutionEvent, ExecutionRun, NodeState, WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.instance import PG_URL_ENV

MIRRORED_TABLES = (WorkflowExecution, ExecutionRun, NodeState, ExecutionEvent, Artifact)


# ---- reading the mirrored rows -------------------------------------------------------------------------


def execution(settings, execution_id: str) -> WorkflowExecution:
    with get_db(settings) as session:
        return session.get(WorkflowExecution, execution_id)


def nodes(settings, execution_id: str) -> dict[str, NodeState]:
    with get_db(settings) as session:
        rows = session.scalars(select(NodeState).where(NodeState.execution_id == execution_id))
        return {row.node_id: row for row in rows}


def events(settings, execution_id: str) -> list[ExecutionEvent]:
    with get_db(settings) as session:
        stmt = select(ExecutionEvent).where(ExecutionEvent.execution_id == execution_id).order_by(ExecutionEvent.id)
        return list(session.scalars(stmt))


def runs(settings, execution_id: str) -> list[ExecutionRun]:
    with get_db(settings) as session:
        stmt = select(ExecutionRun).where(ExecutionRun.execution_id == execution_id)
        return sorted(session.scalars(stmt), key=lambda r: r.created_at)


def types(evs: list[ExecutionEvent], node_id: str | None = None, *, all_nodes: bool = False) -> list[str]:
    """Event types in id order: of one node, of the workflow (node_id None), or of everything."""
    return [e.event_type.value for e in evs if all_nodes or e.node_id == node_id]


def assert_event_order(evs: list[ExecutionEvent]) -> None:
    """Ids strictly increase, each Dagster event part is stored once, and each run's events follow its log.

    (Events derived from a run's end, ``node_blocked`` as parts 1.., come just before its workflow event.)
    """
    ids = [e.id for e in evs]
    assert ids == sorted(set(ids))
    keys = [(e.dagster_run_id, e.dagster_storage_id, e.dagster_event_part) for e in evs]
    assert len(keys) == len(set(keys))
    for run_id in {e.dagster_run_id for e in evs}:
        storage_ids = [e.dagster_storage_id for e in evs if e.dagster_run_id == run_id]
        assert storage_ids == sorted(storage_ids)


def assert_node_completed(state: NodeState, *, attempts: int = 1) -> None:
    assert state.status.value == "completed", (state.node_id, state.status, state.error_message)
    assert state.attempt_count == attempts
    assert isinstance(state.started_at, datetime) and isinstance(state.completed_at, datetime)
    assert state.completed_at >= state.started_at
    assert state.duration_seconds is not None and state.duration_seconds >= 0
    assert state.inputs is not None and "config" in state.inputs and "upstream" in state.inputs
    assert state.error_message is None and state.error_type is None  # cleared by the completing attempt
    assert state.duration_seconds == round((state.completed_at - state.started_at).total_seconds(), 6)


# ---- snapshots of the five mirrored tables ----------------------------------------------------------------

_VOLATILE = {"updated_at"}


def _row(obj: Any) -> dict[str, Any]:
    return {c.key: getattr(obj, c.key) for c in obj.__mapper__.column_attrs if c.key not in _VOLATILE}


def snapshot(settings) -> dict[str, list[dict[str, Any]]]:
    """Every row of the mirrored tables (except ``updated_at``), in a stable order."""
    out: dict[str, list[dict[str, Any]]] = {}
    with get_db(settings) as session:
        for model in MIRRORED_TABLES:
            pk = list(model.__table__.primary_key.columns)
            out[model.__tablename__] = [_row(r) for r in session.scalars(select(model).order_by(*pk))]
    return out


# ---- the CLI in a subprocess ----------------------------------------------------------------------------


def cli_env(env) -> dict[str, str]:
    """This test's environment for a ``python -m maestro_dagster`` subprocess."""
    out = dict(os.environ)
    out["MAESTRO_DATABASE_URL"] = env.settings.database_url.render_as_string(hide_password=False)
    out["DAGSTER_HOME"] = str(env.settings.dagster_home)
    out[PG_URL_ENV] = os.environ.get(PG_URL_ENV, "")
    return out


def maestro_cli(env, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "maestro_dagster", *args],
        env=cli_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_while_running(proc: subprocess.Popen, predicate, what: str, timeout: float = 300.0):
    """Poll ``predicate`` until it gives a true value (returned), failing with the process's output if ``proc``
    (a ``maestro_cli`` process) ends first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"`maestro` ended before {what}:\n{proc.communicate()[0]}")
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class RunSampler:
    """The most runs with these tags in progress at once in Dagster's run storage, sampled every 50 ms until
    ``stop()`` (which returns it)."""

    def __init__(self, instance, tags: dict[str, str]) -> None:
        from dagster import RunsFilter
        from dagster._core.storage.dagster_run import ACTIVE_RUN_STATUSES

        self.most, self._stop = 0, threading.Event()
        runs = RunsFilter(tags=tags, statuses=ACTIVE_RUN_STATUSES)

        def sample() -> None:
            while not self._stop.is_set():
                self.most = max(self.most, instance.get_runs_count(runs))
                time.sleep(0.05)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(30)
        return self.most
