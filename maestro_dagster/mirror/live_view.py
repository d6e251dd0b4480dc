"""An execution's view with the values last written, and ``save_changes``: the one writer of an existing execution's
rows (the caller owns the transaction).

Every pass that applies events to an existing execution (the live mirror's, ``projector.project`` for a pass
without a kept view and for the catch-up loop) writes through ``save_changes``: the rows whose values changed since
the view was loaded or last saved, the pass's event and artifact rows (``store``), and the run's cursor.
A periodic pass of a running run reads a few new events, yet ``load_view`` reads (and locks) every node row of the
execution, JSON columns included. While its run is going, the live mirror is normally the only writer of its
execution, so it keeps the view it saved (``LiveState``) and the next pass only checks that nobody wrote since (the
execution's ``updated_at`` is still the one it wrote; the row is locked on PostgreSQL as ``load_view`` locks it). If
someone did (the daemon's catch-up, another re-execution), the view is loaded again.
The final pass of a run is its full pass (every event read again and replayed) on the kept view; it inserts only
the rows of events the earlier passes did not write (``written``), as the others are already there.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import BindParameter, Table, bindparam, case, select, update
from sqlalchemy.orm import Session

from maestro_dagster.db.dialect import for_update, upsert
from maestro_dagster.db.models import ExecutionRun, NodeState, WorkflowExecution
from maestro_dagster.mirror.model import ArtifactRow, EventRow, ExecutionView, NodeView, RunView
from maestro_dagster.mirror.store import (
    EXECUTION_FIELDS,
    LOADED_ROWS,
    NODE_FIELDS,
    RUN_FIELDS,
    UPDATED_NODE_COLUMNS,
    added_node_rows,
    insert_events,
    load_view,
    node_row_id,
    upsert_artifacts,
)

_E, _R = cast(Table, WorkflowExecution.__table__), cast(Table, ExecutionRun.__table__)  # typed FromClause


_node_values: Callable[[NodeView], tuple[Any, ...]] = operator.attrgetter(*NODE_FIELDS)
# Statements of every pass, built once (building one per pass costs more than running it).
_UPDATE_EXECUTION = (
    update(_E).where(_E.c.id == bindparam("_id")).values({f: bindparam(f) for f in (*EXECUTION_FIELDS, "updated_at")})
)
_run_values: Callable[[RunView], tuple[Any, ...]] = operator.attrgetter(*RUN_FIELDS)
_UPDATE_RUN = update(_R).where(_R.c.run_id == bindparam("_run_id")).values({f: bindparam(f) for f in RUN_FIELDS})
_cursor: BindParameter[int] = bindparam("_cursor")
_ADVANCE_RUN = (
    update(_R)
    .where(_R.c.run_id == bindparam("_run_id"))
    .values(
        last_storage_id=case((_R.c.last_storage_id < _cursor, _cursor), else_=_R.c.last_storage_id),
        dagster_status=bindparam("dagster_status"),
    )
)
_COMPLETE_RUN = _ADVANCE_RUN.values(mirror_complete=True)


@dataclass
class CachedView:
    view: ExecutionView
    updated_at: datetime | None  # the execution's updated_at as this mirror last wrote (or read) it
    node_row_ids: dict[str, str]
    saved_nodes: dict[str, tuple[Any, ...]]
    saved_runs: dict[str, tuple[Any, ...]]


@dataclass
class LiveState:
    """What the live mirror of one run remembers between passes (reset after any failed pass)."""

    execution_id: str | None = None
    cursor: int = 0
    dagster_status: str | None = None
    cached: CachedView | None = field(default=None, repr=False)
    written: set[int] = field(default_factory=set, repr=False)  # storage ids whose rows this mirror committed
    complete: bool = False  # the run's full pass is done

    def reset(self) -> None:
        self.execution_id, self.cursor, self.dagster_status, self.cached = None, 0, None, None
        self.written, self.complete = set(), False


def view_for(session: Session, state: LiveState, execution_id: str) -> CachedView:
    """The execution's view: the kept one if nobody wrote the execution since, else loaded (and kept)."""
    stmt = for_update(session, select(_E.c.updated_at).where(_E.c.id == execution_id))
    current = session.execute(stmt).scalar_one()
    cached = state.cached
    if cached is not None and cached.view.execution_id == execution_id and cached.updated_at == current:
        return cached
    view = load_view(session, execution_id)
    _execution, node_rows, _runs = session.info[LOADED_ROWS].pop(execution_id)
    state.cached = CachedView(
        view=view,
        updated_at=current,
        node_row_ids={row.node_id: row.id for row in node_rows},
        saved_nodes={node_id: _node_values(node) for node_id, node in view.nodes.items()},
        saved_runs={run_id: _run_values(run) for run_id, run in view.runs.items()},
    )
    return state.cached


def save_changes(
    session: Session,
    cached: CachedView,
    events: list[EventRow],
    artifacts: list[ArtifactRow],
    run_id: str,
    dagster_status: str,
    cursor: int,
    *,
    complete: bool = False,
) -> None:
    """Write what changed in ``cached.view`` since it was saved, the pass's rows, and the run's cursor (and
    ``mirror_complete`` after the run's full pass)."""
    view, now = cached.view, datetime.now(UTC)
    changed, added = [], []
    for node_id, node in view.nodes.items():
        values = _node_values(node)
        if values != cached.saved_nodes.get(node_id):
            if node_id not in cached.node_row_ids:  # a for_each item the reducer made: its row is added
                cached.node_row_ids[node_id] = node_row_id(view.execution_id, node_id)
                added.append(node)
            else:
                row = {"id": cached.node_row_ids[node_id], "execution_id": view.execution_id, "node_id": node_id}
                changed.append({**row, **dict(zip(NODE_FIELDS, values, strict=True)), "updated_at": now})
            cached.saved_nodes[node_id] = values
    upsert(session, NodeState.__table__, changed, UPDATED_NODE_COLUMNS)
    upsert(session, NodeState.__table__, added_node_rows(view.execution_id, added, now), UPDATED_NODE_COLUMNS)
    execution_values = {f: getattr(view, f) for f in EXECUTION_FIELDS}
    session.execute(_UPDATE_EXECUTION, {"_id": view.execution_id, **execution_values, "updated_at": now})
    for rid, run in view.runs.items():
        values = _run_values(run)
        if values != cached.saved_runs.get(rid):
            session.execute(_UPDATE_RUN, {"_run_id": rid, **dict(zip(RUN_FIELDS, values, strict=True))})
            cached.saved_runs[rid] = values
    insert_events(session, {view.execution_id: events})
    upsert_artifacts(session, view.execution_id, artifacts, now)
    advance = _COMPLETE_RUN if complete else _ADVANCE_RUN
    session.execute(advance, {"_run_id": run_id, "_cursor": cursor, "dagster_status": dagster_status})
    cached.updated_at = now
