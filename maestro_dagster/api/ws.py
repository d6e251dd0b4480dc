"""WebSockets: every mirrored event of an execution (or of every execution of a workflow), in order, once.

Messages are ``{id, type, timestamp, workflow_id, execution_id, node_id, message, data}``; ``?after=<id>``
resumes after a reconnect with nothing lost (without it, an execution stream starts at its first event and a
workflow stream at the next one); a browser authenticates with the subprotocols ``["maestro.bearer", <token>]``
(``auth.subprotocol_token``). Any text from the client gets ``{type: "pong"}``. Events are read from the
database, so a client of any API instance sees executions started anywhere: PostgreSQL ``LISTEN/NOTIFY``
(the mirror notifies ``maestro_events`` on commit) wakes the streams at once; SQLite streams poll
(``MAESTRO_API_POLL_SECONDS``, 0.5 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select as selectmod
import threading
from datetime import UTC, datetime

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from maestro_dagster.api.auth import BEARER_SUBPROTOCOL, authorize_async, subprotocol_token
from maestro_dagster.api.queries import events_after
from maestro_dagster.api.schemas import MAX_BIGINT
from maestro_dagster.db.models import ExecutionEvent
from maestro_dagster.db.session import get_db
from maestro_dagster.errors import MaestroError
from maestro_dagster.executions.queries import find_execution
from maestro_dagster.settings import Settings
from maestro_dagster.tags import NOTIFY_CHANNEL

router = APIRouter()
log = logging.getLogger(__name__)
POLICY_VIOLATION = 1008


class Notifier:
    """Wakes waiting streams when PostgreSQL says new events were committed (a no-op on SQLite)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.settings.backend == "postgresql":
            self._thread = threading.Thread(target=self._listen, name="maestro-listen", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def subscribe(self, event: asyncio.Event) -> None:
        with self._lock:
            self._waiters.add((asyncio.get_running_loop(), event))

    def unsubscribe(self, event: asyncio.Event) -> None:
        with self._lock:
            self._waiters = {w for w in self._waiters if w[1] is not event}

    def _wake_all(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    def _listen(self) -> None:
        import psycopg2

        url = self.settings.database_url
        while not self._stop.is_set():
            try:
                conn = psycopg2.connect(
                    host=url.host,
                    port=url.port or 5432,
                    user=url.username,
                    password=url.password,
                    dbname=url.database,
                    connect_timeout=10,
                )
                conn.autocommit = True
                conn.cursor().execute(f"LISTEN {NOTIFY_CHANNEL}")
                while not self._stop.is_set():
                    if selectmod.select([conn], [], [], 1.0)[0]:
                        conn.poll()
                        if conn.notifies:
                            conn.notifies.clear()
                            self._wake_all()
            except Exception as exc:  # reconnect; streams keep polling meanwhile
                log.warning("LISTEN %s failed (%s); retrying", NOTIFY_CHANNEL, exc)
                self._stop.wait(2)


async def _stream(websocket: WebSocket, *, execution_id: str | None = None, workflow_id: str | None = None) -> None:
    app = websocket.app
    settings: Settings = app.state.settings
    try:
        await authorize_async(websocket, settings, "viewer")
    except MaestroError as exc:
        await websocket.close(code=POLICY_VIOLATION, reason=exc.message[:120])
        return
    after_param = websocket.query_params.get("after")

    def start_after() -> int:
        with get_db(settings) as session:
            if execution_id is not None:
                find_execution(session, execution_id)
            if after_param is not None:
                after = int(after_param)
                if not 0 <= after <= MAX_BIGINT:
                    raise ValueError(f"after must be an event id between 0 and {MAX_BIGINT}")
                return after
            if execution_id is not None:
                return 0
            return session.scalar(select(func.coalesce(func.max(ExecutionEvent.id), 0))) or 0

    try:
        after = await run_in_threadpool(start_after)
    except (MaestroError, ValueError) as exc:
        await websocket.close(code=POLICY_VIOLATION, reason=str(getattr(exc, "message", exc))[:120])
        return
    # a browser that sent its token as the subprotocol gets that subprotocol named back, as the protocol requires
    await websocket.accept(subprotocol=BEARER_SUBPROTOCOL if subprotocol_token(websocket) else None)
    send_lock = asyncio.Lock()
    wake = asyncio.Event()
    notifier: Notifier = app.state.notifier
    notifier.subscribe(wake)

    def fetch(after_id: int):
        with get_db(settings) as session:
            return events_after(session, execution_id=execution_id, workflow_id=workflow_id, after=after_id)

    async def pump() -> None:
        nonlocal after
        while True:
            for event in await run_in_threadpool(fetch, after):
                async with send_lock:
                    await websocket.send_text(event.model_dump_json())
                after = event.id
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=settings.api_poll_seconds)
            wake.clear()

    async def answer() -> None:
        while True:
            await websocket.receive_text()
            async with send_lock:
                await websocket.send_json({"type": "pong", "timestamp": datetime.now(UTC).isoformat()})

    tasks = [asyncio.create_task(pump()), asyncio.create_task(answer())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    except WebSocketDisconnect:
        pass
    finally:
        notifier.unsubscribe(wake)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


@router.websocket("/ws/workflow/{workflow_id}")
async def workflow_stream(websocket: WebSocket, workflow_id: str) -> None:
    await _stream(websocket, workflow_id=workflow_id)


@router.websocket("/ws/executions/{execution_id}")
async def execution_stream(websocket: WebSocket, execution_id: str) -> None:
    await _stream(websocket, execution_id=execution_id)
