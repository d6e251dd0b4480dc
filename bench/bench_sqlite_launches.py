"""What the embedded SQLite database carries: N ``maestro run`` started at once on one home.

For each N (interleaved over ``--reps`` rounds, a fresh home per round): N processes start ``maestro run tiny`` (a
2-node no-op workflow, the default multiprocess executor) at the same moment on a home whose tables and Dagster
storage exist. Reported: launches that failed or were lost (no execution row), duplicates, ``mirror verify``
differences, the wall time until the last one finished and that time per launch, and the load average. With
``--write`` the section "SQLite: concurrent launches" of docs/benchmarks.md is rewritten.

    .venv/bin/python bench/bench_sqlite_launches.py --counts 5,10,20,40 --reps 2 --write
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _benchdoc import write_sections

ROOT = Path(__file__).resolve().parents[1]
TINY = "id: tiny\nnodes:\n  a: {executor: noop}\n  b: {executor: noop}\nedges: [{source: a, target: b}]\n"
SECTION = "SQLite: concurrent launches"


def home(work: Path) -> dict[str, str]:
    (work / "defs").mkdir(parents=True)
    (work / "defs" / "tiny.yaml").write_text(TINY)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAESTRO_", "POSTGRES_", "DAGSTER_"))}
    env.update(
        MAESTRO_HOME=str(work / "home"),
        MAESTRO_DEFS_DIR=str(work / "defs"),
        MAESTRO_DATABASE_URL=f"sqlite:///{work / 'home' / 'maestro.db'}",
        DAGSTER_HOME=str(work / "home" / "dagster"),
    )
    for args in (("db", "upgrade"), ("defs", "sync")):
        subprocess.run([sys.executable, "-m", "maestro_dagster", *args], cwd=ROOT, env=env, check=True,
                       capture_output=True)  # fmt: skip
    return env


def one_round(count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="maestro_bench_sqlite_") as tmp:
        work = Path(tmp)
        env = home(work)
        started = time.monotonic()
        command = [sys.executable, "-m", "maestro_dagster", "run", "tiny"]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        procs = [subprocess.Popen(command, cwd=ROOT, env=env, **quiet) for _ in range(count)]
        codes = [p.wait() for p in procs]
        wall = time.monotonic() - started
        with sqlite3.connect(work / "home" / "maestro.db") as conn:
            rows = conn.execute("SELECT status, count(*) FROM workflow_executions GROUP BY status").fetchall()
        verify = subprocess.run([sys.executable, "-m", "maestro_dagster", "mirror", "verify"], cwd=ROOT, env=env,
                                capture_output=True, text=True)  # fmt: skip
    completed = dict(rows).get("completed", 0)
    return {
        "failed": sum(1 for c in codes if c != 0),
        "lost": count - sum(n for _, n in rows),
        "completed": completed,
        "verify_exit": verify.returncode,
        "wall": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="5,10,20", help="comma-separated numbers of concurrent launches")
    parser.add_argument("--reps", type=int, default=2, help="rounds (variants interleaved)")
    parser.add_argument("--write", action="store_true", help="rewrite the section of docs/benchmarks.md")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    results: dict[int, list[dict[str, float]]] = {c: [] for c in counts}
    load_before = os.getloadavg()
    for rep in range(args.reps):
        for count in counts if rep % 2 == 0 else list(reversed(counts)):
            result = one_round(count)
            results[count].append(result)
            print(f"round {rep + 1}: {count} launches -> {result}", flush=True)
    load_after = os.getloadavg()
    base = statistics.median(r["wall"] for r in results[counts[0]]) / counts[0]
    lines = [
        f"## {SECTION}",
        "",
        f"`bench/bench_sqlite_launches.py --counts {args.counts} --reps {args.reps}`: N `maestro run tiny` (2 no-op "
        "nodes, multiprocess executor) started at once on one SQLite home; a fresh home per round, sizes "
        f"interleaved; {os.cpu_count()} cores, load average {load_before[0]:.2f} before and {load_after[0]:.2f} "
        "after.",
        "",
        "| launches at once | failed | lost | not completed | `mirror verify` | wall, median | per launch | "
        f"per launch vs {counts[0]} |",
        "|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for count in counts:
        rs = results[count]
        wall = statistics.median(r["wall"] for r in rs)
        lines.append(
            f"| {count} | {sum(r['failed'] for r in rs)} | {sum(r['lost'] for r in rs)} | "
            f"{sum(count - r['completed'] for r in rs)} | "
            f"{'clean' if all(r['verify_exit'] == 0 for r in rs) else 'DIFFERENCES'} | {wall:.1f} s | "
            f"{wall / count:.2f} s | {wall / count / base:.2f}x |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_sections({SECTION: text})


if __name__ == "__main__":
    main()
