"""The ``node_outputs`` table's reads and writes: one op output's JSON per (run, step, output, mapping key).

This module owns the key of a stored output (``OutputKey``), writing one (``put_output``: an upsert, since a retried
step or a redelivered task writes the same key again), reading one (``get_output``) and deleting those of runs
(``delete_outputs_of_runs``; ``delete_outputs_of_executions`` for retention). Values are JSON as given: encoding
what ops pass is the IO manager's (``maestro_dagster.resources.outputs``). Every function takes the caller's session
and never commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from maestro_dagster.db.dialect import upsert
from maestro_dagster.db.models import ExecutionRun, NodeOutput
from maestro_dagster.db.types import utcnow

DELETE_CHUNK = 500  # run ids per DELETE (well under SQLite's bound parameter limit)
_TABLE = NodeOutput.__table__


@dataclass(frozen=True)
class OutputKey:
    """Which output: of step ``step_key`` of Dagster run ``run_id``, named ``output_name``; ``mapping_key`` is the
    item of a dynamic output, ``""`` for any other."""

    run_id: str
    step_key: str
    output_name: str
    mapping_key: str = ""


def put_output(session: Session, key: OutputKey, value: Any) -> None:
    """Store ``value`` (JSON) under ``key``, replacing what was stored there."""
    row = {
        "run_id": key.run_id,
        "step_key": key.step_key,
        "output_name": key.output_name,
        "mapping_key": key.mapping_key,
        "value": value,
        "created_at": utcnow(),
    }
    upsert(session, _TABLE, [row], update=("value", "created_at"))


def get_output(session: Session, key: OutputKey, default: Any = None) -> Any:
    """The value stored under ``key``, or ``default`` when there is none (pass a sentinel to tell a stored
    ``null`` from a missing row)."""
    stmt = select(NodeOutput.value).where(
        NodeOutput.run_id == key.run_id,
        NodeOutput.step_key == key.step_key,
        NodeOutput.output_name == key.output_name,
        NodeOutput.mapping_key == key.mapping_key,
    )
    rows = session.execute(stmt).scalars().all()
    return rows[0] if rows else default


def delete_outputs_of_runs(session: Session, run_ids: Iterable[str]) -> int:
    """Delete every stored output of these runs; returns how many rows went."""
    ids = list(dict.fromkeys(run_ids))
    removed = 0
    for start in range(0, len(ids), DELETE_CHUNK):
        chunk = ids[start : start + DELETE_CHUNK]
        stmt = delete(NodeOutput).where(NodeOutput.run_id.in_(chunk)).execution_options(synchronize_session=False)
        removed += cast(CursorResult[Any], session.execute(stmt)).rowcount
    return removed


def delete_outputs_of_executions(session: Session, execution_ids: Iterable[str]) -> int:
    """Delete every stored output of these executions' runs (one statement, a subquery over ``execution_runs``:
    a delete only, as retention's deletes are); returns how many rows went."""
    runs = select(ExecutionRun.run_id).where(ExecutionRun.execution_id.in_(list(execution_ids)))
    stmt = delete(NodeOutput).where(NodeOutput.run_id.in_(runs)).execution_options(synchronize_session=False)
    return cast(CursorResult[Any], session.execute(stmt)).rowcount
