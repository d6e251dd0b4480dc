"""Concurrent launches on SQLite are never lost (issue 12, point 2).

20 ``maestro run`` started at once, on a fresh home (Dagster's storage not created yet: the first opening creates
it under the home's lock) and on a used one: every launch exits 0 with its own execution, completed, one run each,
and ``mirror verify`` finds no difference; Dagster's storage has one Alembic head (a later Dagster command works).
A launch that meets a database locked for longer than ``MAESTRO_SQLITE_LOCK_WAIT_SECONDS`` fails with one clear
message and leaves no execution row behind.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from _procs import MAESTRO_ENV, ROOT, TEST_SETTINGS

pytestmark = pytest.mark.e2e
LAUNCHES = 20
TINY = """id: tiny
nodes:
  a: {executor: noop}
  b: {executor: noop}
edges: [{source: a, target: b}]
"""


def make_home(work: Path) -> dict[str, str]:
    (work / "defs").mkdir(parents=True)
    (work / "defs" / "tiny.yaml").write_text(TINY)
    env = {k: v for k, v in os.environ.items() if k not in MAESTRO_ENV}
    env.update(TEST_SETTINGS)
    env.update(
        MAESTRO_HOME=str(work / "home"),
        MAESTRO_DEFS_DIR=str(work / "defs"),
        MAESTRO_DATABASE_URL=f"sqlite:///{work / 'home' / 'maestro.db'}",
        DAGSTER_HOME=str(work / "home" / "dagster"),
    )
    for args in (("db", "upgrade"), ("defs", "sync")):
        done = maestro(env, *args)
        assert done.returncode == 0, done.stdout + done.stderr
    return env


def maestro(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "maestro_dagster", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def executions(db: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT e.id, e.status, (SELECT count(*) FROM execution_runs r WHERE r.execution_id = e.id) "
            "FROM workflow_executions e ORDER BY e.id"
        ).fetchall()


@pytest.mark.parametrize("home_state", ["fresh", "used"])
def test_twenty_concurrent_launches_are_all_kept(tmp_path: Path, home_state: str):
    env = make_home(tmp_path)
    dagster_home = Path(env["DAGSTER_HOME"])
    if home_state == "fresh":  # as if Dagster's storage had never been opened on this home
        shutil.rmtree(dagster_home)
    else:
        assert maestro(env, "run", "tiny").returncode == 0
    before = {row[0] for row in executions(tmp_path / "home" / "maestro.db")}

    command = [sys.executable, "-m", "maestro_dagster", "run", "tiny"]
    output = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
    procs = [subprocess.Popen(command, cwd=ROOT, env=env, **output) for _ in range(LAUNCHES)]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    failed = [(p.returncode, out[-800:]) for p, out in zip(procs, outputs, strict=True) if p.returncode != 0]
    assert not failed, f"{len(failed)} of {LAUNCHES} launches failed: {failed}"
    assert not any("DEBUG" in out for out in outputs), "maestro run printed Dagster's DEBUG lines"

    rows = [row for row in executions(tmp_path / "home" / "maestro.db") if row[0] not in before]
    assert len(rows) == LAUNCHES, f"{LAUNCHES - len(rows)} launches lost"
    assert all(status == "completed" and runs == 1 for _, status, runs in rows), rows
    printed = {line.split()[1] for out in outputs for line in out.splitlines() if line.startswith("execution ")}
    assert printed == {row[0] for row in rows}, "each launch printed its own execution"

    verify = maestro(env, "mirror", "verify")
    assert verify.returncode == 0 and "0 difference(s)" in verify.stdout, verify.stdout + verify.stderr
    with sqlite3.connect(dagster_home / "history" / "runs.db") as conn:
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
    info = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "run", "list", "--limit", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert info.returncode == 0, info.stdout + info.stderr


def test_launch_meeting_a_long_lock_fails_clearly_and_leaves_nothing(tmp_path: Path):
    env = make_home(tmp_path)
    env.update(MAESTRO_SQLITE_BUSY_TIMEOUT="0.5", MAESTRO_SQLITE_LOCK_WAIT_SECONDS="3")
    db = tmp_path / "home" / "maestro.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer that keeps the lock past the bound
    try:
        done = maestro(env, "run", "tiny")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "stayed locked by other writers" in done.stderr and "MAESTRO_SQLITE_LOCK_WAIT_SECONDS" in done.stderr
    assert executions(db) == []

    again = maestro(env, "run", "tiny")  # once the other writer is done, the launch goes through
    assert again.returncode == 0, again.stdout + again.stderr
    assert [status for _, status, _ in executions(db)] == ["completed"]
