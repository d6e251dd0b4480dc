"""Dagster's PostgreSQL event log with one kept connection per process: ``MaestroPostgresEventLogStorage``.

dagster-postgres's ``PostgresEventLogStorage`` builds its engine with ``NullPool`` (only the webserver swaps in a
pool, through ``optimize_for_webserver``), so every stored event opens a new server connection (a TCP connect, the
start-up of a server backend, authentication), inserts, notifies, and closes it. This subclass gives the engine a
pool of one kept connection (``pool_pre_ping``: a connection the server dropped is replaced before use), with
up to ``MAX_OVERFLOW`` more while several threads of one process write at once, closed when returned. Everything
else is Dagster's: the autocommit of each statement, the NOTIFY, the retries of a failed connect, the queries, the
webserver's own pool. A pooled connection must not cross a ``fork``: a child forgets its parent's connections
without closing them (``dispose(close=False)``) before its first use.

It lives apart from ``maestro_dagster.event_storage`` so that a SQLite process never imports dagster-postgres (about
half a second). ``dagster.postgres.yaml`` names it under ``event_log_storage`` (Dagster's per-storage keys; runs
and schedules stay dagster-postgres's classes on the same database).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from dagster._serdes import ConfigurableClassData
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config
from sqlalchemy.engine import Connection
from sqlalchemy.pool import QueuePool

MAX_OVERFLOW = 4


class MaestroPostgresEventLogStorage(PostgresEventLogStorage):
    """``PostgresEventLogStorage`` whose engine keeps one connection open between events."""

    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True, **kwargs: Any) -> None:
        self._engine_pid = os.getpid()
        super().__init__(postgres_url, should_autocreate_tables, **kwargs)
        self._engine.dispose()
        self._engine = create_pg_engine(
            self.postgres_url,
            self._token_provider,
            isolation_level="AUTOCOMMIT",
            poolclass=QueuePool,
            pool_size=1,
            max_overflow=MAX_OVERFLOW,
            pool_pre_ping=True,
        )

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> MaestroPostgresEventLogStorage:
        return cls(
            pg_url_from_config(config_value),
            config_value.get("should_autocreate_tables", True),
            inst_data=inst_data,
            token_provider=get_token_provider_from_config(config_value),
        )

    def _connect(self) -> AbstractContextManager[Connection]:
        if self._engine_pid != os.getpid():  # forked: the parent's connections are not ours to use or close
            self._engine.dispose(close=False)
            self._engine_pid = os.getpid()
        return super()._connect()

    def dispose(self) -> None:
        super().dispose()
        if self._engine_pid == os.getpid():
            self._engine.dispose()
