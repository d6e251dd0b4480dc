"""Processes for the end-to-end tests: waiting with deadlines, process trees, started processes, and a
throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl`` as the ``postgres`` user; never the shared server)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from _procs import ROOT, Proc, free_port, tail, wait_for  # noqa: F401 - re-exported for the e2e tests


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (read from /proc), children first."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, frontier = [], [pid]
    while frontier:
        children = [p for p, ppid in parents.items() if ppid in frontier]
        out.extend(children)
        frontier = children
    return out


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):  # a zombie is dead for our purposes
        if (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


# ---- a throwaway PostgreSQL cluster (never the shared server) ---------------------------------------------


def postgres_bin() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if not candidates:
        pytest.fail("no PostgreSQL binaries under /usr/lib/postgresql/*/bin (initdb, pg_ctl) for a throwaway cluster")
    return candidates[-1].parent


def chown_postgres(path: Path) -> None:
    shutil.chown(path, "postgres", "postgres")


class Cluster:
    """``initdb`` + ``pg_ctl`` on a free port, run as the ``postgres`` user, in a temp dir it owns."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.base = Path(tempfile.mkdtemp(prefix="maestro_e2e_pg_"))
        chown_postgres(self.base)
        self.data, self.log, self.port = self.base / "data", self.base / "postgres.log", free_port()
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def _pg(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", str(self.bin / tool), *args],
            capture_output=True, text=True, timeout=timeout, cwd=self.base,
        )  # fmt: skip
        assert done.returncode == 0, f"{tool} {' '.join(args)} failed:\n{done.stdout}{done.stderr}\n{tail(self.log)}"
        return done

    def start(self) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        cmd = ["runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"), "-D", str(self.data), "status"]
        return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0

    def create_database(self, name: str) -> str:
        self._pg("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            if self.running():
                self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)
