"""Op outputs through Dagster's filesystem IO manager (pickles under DAGSTER_HOME/storage) vs
``node_outputs_io_manager`` (JSON rows in Maestro's database).

    .venv/bin/python bench/bench_outputs.py [--reps N] [--write]

In one process, in a temporary MAESTRO_HOME (SQLite Maestro database migrated to head, a SQLite Dagster instance
on disk), removed afterwards: one workflow of no-op nodes, a chain of 10 (``c00`` .. ``c09``) then a fan of 10
(``f00`` .. ``f09`` after ``c09``) joined by ``join`` (21 steps, 29 loaded inputs), compiled twice with the
Maestro runtime: once with Dagster's ``fs_io_manager``, once with ``node_outputs_io_manager``. Each run is
``execute_in_process`` (the in-process executor: every step in this process, one after the other), checked
successful; its wall time is the call's. Variants interleaved (order alternated every repetition), medians of
``--reps`` (default 10) after one warm-up round that is dropped. The load average is reported before and after.
``--write`` replaces the section "Node outputs: filesystem vs database" of docs/benchmarks.md. A quick check:
``--reps 1``. Run it alone: other work on the machine moves both figures.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _benchdoc import DOC, write_sections

ROOT = Path(__file__).resolve().parents[1]
SECTION = "Node outputs: filesystem vs database"
CHAIN, FAN = 10, 10
SCRUB_PREFIXES = ("MAESTRO_", "POSTGRES_", "DAGSTER_")
QUIET = {"initial_context": {}, "loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def workflow() -> dict[str, Any]:
    chain = [f"c{i:02d}" for i in range(CHAIN)]
    fan = [f"f{i:02d}" for i in range(FAN)]
    edges = list(itertools.pairwise(chain)) + [(chain[-1], f) for f in fan] + [(f, "join") for f in fan]
    return {
        "id": "bench_outputs",
        "nodes": {n: {"executor": "noop"} for n in [*chain, *fan, "join"]},
        "edges": [{"source": s, "target": t} for s, t in edges],
    }


def configure(tmp: Path) -> Path:
    """This process's environment: embedded SQLite under ``tmp``; returns the Dagster home."""
    for name in list(os.environ):
        if name.startswith(SCRUB_PREFIXES):
            del os.environ[name]
    home = tmp / "dagster"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    os.environ.update(MAESTRO_HOME=str(tmp / "home"), DAGSTER_HOME=str(home), DAGSTER_DISABLE_TELEMETRY="yes")
    return home


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="maestro_bench_outputs_"))
    try:
        home = configure(tmp)
        # imported once the environment is set (the settings are read from it)
        from dagster import DagsterInstance, fs_io_manager
        from sqlalchemy import func, select

        from maestro_dagster.compiler import build_job
        from maestro_dagster.db import migrate
        from maestro_dagster.db.models import NodeOutput
        from maestro_dagster.db.session import dispose_engines, get_db
        from maestro_dagster.policy import DefinitionPolicy
        from maestro_dagster.resources import maestro_runtime, node_outputs_io_manager
        from maestro_dagster.settings import get_settings
        from maestro_dagster.spec import parse_definition

        settings = get_settings()
        migrate.upgrade(settings)
        spec = parse_definition(workflow(), policy=DefinitionPolicy.for_origin(settings, "repository"))
        variants = {
            "fs_io_manager": build_job(
                spec, runtime_resource=maestro_runtime, extra_resources={"io_manager": fs_io_manager}
            ),
            "node_outputs_io_manager": build_job(
                spec, runtime_resource=maestro_runtime, extra_resources={"io_manager": node_outputs_io_manager}
            ),
        }
        names = list(variants)
        walls: dict[str, list[float]] = {name: [] for name in names}
        with DagsterInstance.from_config(str(home)) as instance:
            load_before = os.getloadavg()
            for rep in range(args.reps + 1):  # round 0 is the warm-up
                for name in names if rep % 2 == 0 else names[::-1]:
                    started = time.perf_counter()
                    result = variants[name].execute_in_process(
                        run_config=QUIET, instance=instance, raise_on_error=False
                    )
                    wall = time.perf_counter() - started
                    assert result.success, f"{name}: the run failed"
                    print(f"  {'warm-up' if rep == 0 else rep}/{args.reps} {name}: {wall:.3f} s", file=sys.stderr)
                    if rep:
                        walls[name].append(wall)
            load_after = os.getloadavg()
        with get_db(settings) as session:  # every step of every database run wrote its row
            rows = session.scalar(select(func.count()).select_from(NodeOutput))
        assert rows == (args.reps + 1) * (CHAIN + FAN + 1), f"{rows} rows in node_outputs"
        dispose_engines()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    fs, db = (statistics.median(walls[name]) for name in names)
    steps = CHAIN + FAN + 1
    command = ".venv/bin/python bench/bench_outputs.py --write" + (f" --reps {args.reps}" if args.reps != 10 else "")
    lines = [
        f"## {SECTION}",
        "",
        f"Reproduce: `{command}`. Machine: {os.cpu_count()} cores, {platform.system()}, Python "
        f"{platform.python_version()}; SQLite Maestro database and SQLite Dagster instance in a fresh temporary "
        f"home. One workflow of {steps} no-op nodes (a chain of {CHAIN}, then a fan of {FAN} joined by one node), "
        "run with `execute_in_process` (in-process executor, the Maestro runtime) in one Python process; wall time "
        f"of the call, medians of {args.reps} repetition(s), the two variants interleaved (order alternated) after a "
        "warm-up round that is dropped. *fs_io_manager*: Dagster's default, a pickle per output under "
        "`DAGSTER_HOME/storage`; *node_outputs_io_manager*: a JSON row per output in `node_outputs` (one "
        "transaction per output, `BEGIN IMMEDIATE` on SQLite) and a read per loaded input. Every run is checked "
        "successful, and every step of every database run checked to have its row.",
        "",
        "| IO manager | wall s per run | per step ms |",
        "|---|---:|---:|",
        f"| fs_io_manager | {fs:.3f} | {fs / steps * 1000:.1f} |",
        f"| node_outputs_io_manager | {db:.3f} | {db / steps * 1000:.1f} |",
        "",
        f"- node_outputs_io_manager / fs_io_manager: **{db / fs:.2f}x** ({(db - fs) / steps * 1000:+.1f} ms per step).",
        f"- Load average (1, 5, 15 min) before: {', '.join(f'{x:.1f}' for x in load_before)}; after: "
        f"{', '.join(f'{x:.1f}' for x in load_after)}.",
    ]
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_sections({SECTION: body})
        print(f"wrote {SECTION!r} into {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
