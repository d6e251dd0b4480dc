"""MaestroSqliteEventLogStorage on a real Dagster instance (a temp DAGSTER_HOME with the project's dagster.yaml).

The runs' events must be what Dagster's own SqliteEventLogStorage stores and reads (the same files, read back by
Dagster's class); two processes writing one run's shard lose nothing; a re-execution reads its parent's events; and
``instance.watch_event_logs`` (the webserver's live updates) delivers events written by another process while that
process keeps its connection open.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import _storage_jobs
import dagster as dg
import pytest
from _procs import wait_for
from dagster import DagsterEventType, ReexecutionOptions
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

from maestro_dagster.event_storage import MaestroSqliteEventLogStorage

PROJECT = Path(__file__).resolve().parents[2]
WRITER = Path(_storage_jobs.__file__)
CHAIN = ReconstructableJob.for_file(str(WRITER), "chain")  # its step processes load it from the file


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(PROJECT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MAESTRO_TEST_FLAKY_FILE", str(tmp_path / "flaky-ok"))
    return home


@pytest.fixture
def instance(home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(home)) as inst:
        yield inst


def _plain_instance(home: Path) -> dg.DagsterInstance:
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return dg.DagsterInstance.from_config(str(home))


def _steps(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str | None]]:
    return [
        (r.event_log_entry.dagster_event_type.value, r.event_log_entry.step_key)
        for r in instance.get_records_for_run(run_id).records
        if r.event_log_entry.dagster_event_type is not None
    ]


def test_the_project_config_selects_the_class_and_dagsters_shard_location(instance, home):
    storage = instance.event_log_storage
    assert type(storage) is MaestroSqliteEventLogStorage
    result = _storage_jobs.chain.execute_in_process(instance=instance, raise_on_error=False)
    assert (home / "history" / "runs" / f"{result.run_id}.db").exists()


def test_a_runs_events_read_back_identically_to_dagsters_class(instance, home, tmp_path):
    Path(os.environ["MAESTRO_TEST_FLAKY_FILE"]).touch()
    ours = _storage_jobs.chain.execute_in_process(instance=instance)
    records = instance.get_records_for_run(ours.run_id).records
    dagsters = SqliteEventLogStorage(str(home / "history" / "runs"))
    assert [(r.storage_id, r.event_log_entry) for r in dagsters.get_records_for_run(ours.run_id).records] == [
        (r.storage_id, r.event_log_entry) for r in records
    ]
    with _plain_instance(tmp_path / "plain") as plain:
        assert type(plain.event_log_storage) is SqliteEventLogStorage
        theirs = _storage_jobs.chain.execute_in_process(instance=plain)
        assert _steps(instance, ours.run_id) == _steps(plain, theirs.run_id)
    # the run status events are mirrored into the index shard as by Dagster's class
    status = instance.fetch_run_status_changes(DagsterEventType.RUN_SUCCESS, limit=10).records
    assert [r.event_log_entry.run_id for r in status] == [ours.run_id]


def _writer(home: Path, run_id: str, count: int, tag: str, start: Path | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, str(WRITER), str(home), run_id, str(count), tag] + ([str(start)] if start else [])
    return subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ.copy())


def test_two_processes_writing_one_shard_lose_nothing(instance, home, tmp_path):
    run_id = "c0ffee00-0000-4000-8000-000000000001"
    start = tmp_path / "start"
    writers = [_writer(home, run_id, 300, tag, start) for tag in ("a", "b")]
    start.touch()
    try:
        for w in writers:
            assert w.stdout is not None and w.stdout.readline().strip() == "stored"
    finally:
        for w in writers:
            w.communicate("")
    assert [w.returncode for w in writers] == [0, 0]
    records = instance.get_records_for_run(run_id).records
    messages = [r.event_log_entry.user_message for r in records]
    assert len({r.storage_id for r in records}) == 600
    for tag in ("a", "b"):  # each writer's events all there, in its order
        assert [m for m in messages if m.startswith(f"{tag}-")] == [f"{tag}-{i}" for i in range(300)]


def test_a_reexecution_reads_its_parents_events(instance):
    parent = dg.execute_job(CHAIN, instance=instance)
    assert not parent.success
    Path(os.environ["MAESTRO_TEST_FLAKY_FILE"]).touch()
    options = ReexecutionOptions.from_failure(parent.run_id, instance)
    child = dg.execute_job(CHAIN, instance=instance, reexecution_options=options)
    assert child.success
    started = [s for t, s in _steps(instance, child.run_id) if t == "STEP_START"]
    assert started == ["flaky", "last"]  # the steps to run were found in the parent's events, in its shard
    loaded = [r.event_log_entry.dagster_event for r in instance.get_records_for_run(child.run_id).records]
    assert any(e is not None and e.event_type_value == "LOADED_INPUT" and e.step_key == "flaky" for e in loaded)


def test_watch_delivers_events_of_a_writer_that_keeps_its_connection(instance, home):
    run_id = "c0ffee00-0000-4000-8000-000000000002"
    instance.event_log_storage.store_event(_storage_jobs.log_entry(run_id, "before"))  # the shard exists
    seen: list[str] = []
    instance.watch_event_logs(run_id, None, lambda entry, _cursor: seen.append(entry.user_message))
    writer = _writer(home, run_id, 20, "w")
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "stored"
        wait_for(lambda: len(seen) >= 21, timeout=60, what="the watcher's delivery of the writer's events")
        assert writer.poll() is None  # delivered while the writer still holds its connection
    finally:
        writer.communicate("")
    assert seen == ["before"] + [f"w-{i}" for i in range(20)]


def test_synchronous_is_full_unless_configured(home, tmp_path):
    with dg.DagsterInstance.from_config(str(home)) as inst:
        inst.event_log_storage.store_event(_storage_jobs.log_entry("r1", "x"))
        assert _synchronous(inst.event_log_storage, "r1") == 2  # FULL, as Dagster's class
    normal = MaestroSqliteEventLogStorage(str(tmp_path / "normal"), synchronous="NORMAL")
    normal.store_event(_storage_jobs.log_entry("r1", "x"))
    assert _synchronous(normal, "r1") == 1
    normal.dispose()
    with pytest.raises(ValueError, match="synchronous: 'OFF' is not one of FULL, NORMAL"):
        MaestroSqliteEventLogStorage(str(tmp_path / "off"), synchronous="OFF")


def _synchronous(storage: MaestroSqliteEventLogStorage, shard: str) -> int:
    with storage.run_connection(shard) as conn:
        return int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())


def test_wipe_closes_the_kept_connections_and_the_storage_still_works(tmp_path):
    storage = MaestroSqliteEventLogStorage(str(tmp_path / "runs"))
    storage.store_event(_storage_jobs.log_entry("r1", "x"))
    storage.wipe()
    assert not (tmp_path / "runs" / "r1.db").exists()
    storage.store_event(_storage_jobs.log_entry("r1", "y"))
    assert [r.event_log_entry.user_message for r in storage.get_records_for_run("r1").records] == ["y"]
    with sqlite3.connect(tmp_path / "runs" / "r1.db") as conn:  # another reader sees the committed row
        assert conn.execute("SELECT count(*) FROM event_logs").fetchone() == (1,)
    storage.dispose()
