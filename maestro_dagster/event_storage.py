"""Dagster's SQLite event log with its engines kept: ``MaestroSqliteEventLogStorage``.

Dagster's ``SqliteEventLogStorage`` (one database file per run, plus the ``index`` shard) builds a new engine
for every call of ``run_connection`` / ``index_connection``: every event it stores opens the file, reads the
schema, starts a WAL, commits, closes, and (being the last connection) checkpoints the WAL into the file and
deletes it. This subclass changes only where the connection comes from: an engine per shard is kept (a pool of
one connection, at most ``MAX_ENGINES`` shards per process, least recently used closed first), so a stored event
is one insert and one commit. Everything else is Dagster's: the schema and its creation (``_initdb``), the
transaction of each call, the lock that serialises this process's calls, the busy timeout
(``SQLITE_BUSY_TIMEOUT_SECONDS``) with which concurrent writers from several processes wait for one another,
and every query.

``synchronous`` (config, default ``FULL``) is SQLite's: with ``FULL`` a commit is on disk when it returns, as
with Dagster's class. ``NORMAL`` (WAL mode) skips the flush of each commit: still safe against a crash of any
process, but a power loss or an OS crash may lose the last events of a run that ``runs.db`` already records;
it is measured in docs/benchmarks.md and not the project's setting.

Two consequences of keeping connections open are handled here:

- Dagster's event-log watcher (``SqliteEventLogStorageWatchdog``, the webserver's live updates) waits for a
  change of the run's ``.db`` file. With an open connection a commit lands in the ``-wal`` file and the
  ``.db`` file changes only at a checkpoint, so after a transaction that changed rows the shard file's
  modification time is set (``os.utime``), which is the change the watcher sees, at once, as before.
- A pooled SQLite connection must not cross a ``fork``: engines are kept per process id, and a child drops
  its parent's engines without closing them (``dispose(close=False)``).

Configured by the project's ``dagster.yaml`` (``event_log_storage: {module: maestro_dagster.event_storage, class:
MaestroSqliteEventLogStorage, config: {home: {env: DAGSTER_HOME}}}``): the shards stay where Dagster's default
storage keeps them (``$DAGSTER_HOME/history/runs``), so runs stored before or after the change read alike;
``base_dir`` may be given instead, as for Dagster's class. Runs and schedules stay Dagster's SQLite storages.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from dagster._config import Enum, EnumValue, Field, StringSource
from dagster._config.config_schema import UserConfigSchema
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

MAX_ENGINES = 16  # shards a process keeps open; a run's worker uses two (its shard and the index)
SYNCHRONOUS = ("FULL", "NORMAL")


class MaestroSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` whose engines (one pooled connection per shard) live as long as the storage."""

    def __init__(
        self, base_dir: str, inst_data: ConfigurableClassData | None = None, synchronous: str = "FULL"
    ) -> None:
        if synchronous.upper() not in SYNCHRONOUS:
            raise ValueError(
                f"event_log_storage config synchronous: {synchronous!r} is not one of {', '.join(SYNCHRONOUS)}; "
                "fix it in dagster.yaml (or leave it out for FULL)"
            )
        self._synchronous = synchronous.upper()
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        self._engines_lock = threading.Lock()
        super().__init__(base_dir, inst_data)

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        levels = Enum("MaestroSqliteSynchronous", [EnumValue(level) for level in SYNCHRONOUS])
        return {
            "base_dir": Field(StringSource, is_required=False, description="the directory of the shards"),
            "home": Field(StringSource, is_required=False, description="a Dagster home: shards under history/runs"),
            "synchronous": Field(levels, is_required=False, default_value="FULL"),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Any
    ) -> MaestroSqliteEventLogStorage:
        return cls(
            shards_directory(config_value.get("base_dir"), config_value.get("home")),
            inst_data=inst_data,
            synchronous=config_value.get("synchronous", "FULL"),
        )

    def _engine(self, shard: str) -> Engine:
        """The kept engine of ``shard`` (created on first use; the least recently used closed beyond the bound)."""
        with self._engines_lock:
            if self._engines_pid != os.getpid():  # forked: the parent's connections are not ours to use or close
                for engine in self._engines.values():
                    engine.dispose(close=False)
                self._engines.clear()
                self._engines_pid = os.getpid()
            kept = self._engines.get(shard)
            if kept is not None:
                self._engines.move_to_end(shard)
                return kept
            engine = sa.create_engine(
                self.conn_string_for_shard(shard),
                poolclass=QueuePool,
                pool_size=1,  # this storage uses one connection of a shard at a time (Dagster's _db_lock)
                max_overflow=4,  # _initdb inspects the schema on a second one while its first is open
                # Connections are used under the storage's lock by whichever thread holds it (e.g. the watcher).
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            if self._synchronous != "FULL":
                sa.event.listen(engine, "connect", _set_synchronous(self._synchronous))
            self._engines[shard] = engine
            while len(self._engines) > MAX_ENGINES:
                _, oldest = self._engines.popitem(last=False)
                oldest.dispose()
            return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        """Dagster's ``_connect`` (same lock, same schema check, one transaction) on the shard's kept engine."""
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn:
                raw = conn.connection.dbapi_connection
                changes_before = getattr(raw, "total_changes", None)
                with conn.begin():
                    yield conn
                if changes_before is not None and raw is not None and raw.total_changes != changes_before:
                    _touch(self.path_for_shard(shard))

    def _dispose_engines(self) -> None:
        with self._engines_lock:
            for engine in self._engines.values():
                if self._engines_pid == os.getpid():
                    engine.dispose()
                else:
                    engine.dispose(close=False)
            self._engines.clear()

    def wipe(self) -> None:
        with self._db_lock:  # the files are deleted: no connection of ours may stay open on them
            self._dispose_engines()
        super().wipe()

    def upgrade(self) -> None:
        super().upgrade()
        with self._db_lock:  # migrations may have changed the schema our kept connections cached
            self._dispose_engines()

    def dispose(self) -> None:
        super().dispose()
        with self._db_lock:
            self._dispose_engines()


def shards_directory(base_dir: str | None, home: str | None) -> str:
    """The shards' directory: ``base_dir`` as Dagster's class takes it, or Dagster's default under ``home``."""
    if (base_dir is None) == (home is None):
        raise ValueError(
            "event_log_storage config of MaestroSqliteEventLogStorage: give exactly one of base_dir (the directory "
            "of the run shards) and home (the Dagster home, shards under history/runs) in dagster.yaml"
        )
    return base_dir if base_dir is not None else os.path.join(str(home), "history", "runs", "")


def _set_synchronous(value: str) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA synchronous={value}")  # one of SYNCHRONOUS, checked in __init__

    return on_connect


def _touch(path: str) -> None:
    """Set ``path``'s modification time: the file change Dagster's watcher waits for after a commit."""
    with contextlib.suppress(OSError):  # deleted meanwhile (a wipe): nobody watches it any more
        os.utime(path)
