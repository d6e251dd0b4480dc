"""Dagster's own event writes on SQLite: Dagster's ``SqliteEventLogStorage`` against ``MaestroSqliteEventLogStorage``.

Each measurement is a fresh process on a fresh Dagster home (SQLite storage, storage created before the clock
starts) that runs a Dagster job ``linear-N`` (a chain of N no-op ops, passing a value) with ``execute_in_process``:
every event of the run is written by the event log storage under test. Variants: ``dagster`` (Dagster's class, the
default storage), ``maestro`` (the project's ``dagster.yaml``: ``synchronous`` FULL as Dagster's) and
``maestro-normal`` (the same with ``synchronous: NORMAL``, measured only: not the project's setting); with
``--postgres URL``, also ``pg-dagster`` (``storage: postgres``) and ``pg-maestro`` (the project's
``dagster.postgres.yaml``), each on a fresh database of that server. Rounds
interleave sizes and variants (the variants' order rotates each round). Reported: medians of the run's wall and CPU
time (the process's CPU time around ``execute_in_process``), the events stored, and ratios against ``dagster``.
With ``--write`` the section "Dagster event writes" of docs/benchmarks.md is rewritten.

    .venv/bin/python bench/bench_event_writes.py --sizes 100,200 --reps 5 \
        --postgres postgresql+psycopg2://postgres@127.0.0.1:5432/postgres --write
    .venv/bin/python bench/bench_event_writes.py --quick      # sizes 10,20, one round: checks that it works
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy
from _benchdoc import write_sections

ROOT = Path(__file__).resolve().parents[1]
SECTION = "Dagster event writes"
VARIANTS = ("dagster", "maestro", "maestro-normal")
PG_VARIANTS = ("pg-dagster", "pg-maestro")
PG_URL_ENV = "MAESTRO_DAGSTER_POSTGRES_URL"  # what dagster.postgres.yaml reads
PROJECT_YAML = (ROOT / "dagster.yaml").read_text()
PG_PROJECT_YAML = (ROOT / "dagster.postgres.yaml").read_text()
NORMAL = "      env: DAGSTER_HOME\n"
INSTANCE_YAML = {
    "dagster": "telemetry:\n  enabled: false\n",
    "maestro": PROJECT_YAML,
    "maestro-normal": PROJECT_YAML.replace(NORMAL, NORMAL + "    synchronous: NORMAL\n"),
    "pg-dagster": f"telemetry:\n  enabled: false\nstorage:\n  postgres:\n    postgres_url:\n      env: {PG_URL_ENV}\n",
    "pg-maestro": PG_PROJECT_YAML,
}


def child(variant: str, size: int) -> None:
    """One measurement (in this fresh process): prints a JSON line."""
    import logging

    import dagster as dg

    logging.getLogger("dagster").setLevel(logging.WARNING)  # the run's console log is not what is measured
    with tempfile.TemporaryDirectory(prefix="maestro_bench_events_") as tmp:
        os.environ["DAGSTER_HOME"] = tmp
        Path(tmp, "dagster.yaml").write_text(INSTANCE_YAML[variant])

        @dg.op(name="n1")
        def first() -> int:
            return 1

        def step(i: int) -> dg.OpDefinition:
            @dg.op(name=f"n{i}")
            def op(value: int) -> int:
                return value

            return op

        steps = [step(i) for i in range(2, size + 1)]

        @dg.job(name=f"linear_{size}")
        def linear() -> None:
            value = first()
            for op in steps:
                value = op(value)

        with dg.DagsterInstance.from_config(tmp) as instance:
            instance.get_runs(limit=1)
            instance.event_log_storage.get_maximum_record_id()  # storage created before the clock starts
            wall, cpu = time.perf_counter(), time.process_time()
            result = linear.execute_in_process(instance=instance)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            events = len(instance.get_records_for_run(result.run_id).records)
            storage = type(instance.event_log_storage).__name__
    print(json.dumps({"ok": result.success, "wall": wall, "cpu": cpu, "events": events, "storage": storage}))


def measure(variant: str, size: int, pg_admin_url: str | None) -> dict[str, Any]:
    env = dict(os.environ)
    if variant.startswith("pg-"):
        assert pg_admin_url is not None
        database = f"maestro_bench_events_{os.getpid()}_{time.monotonic_ns()}"
        admin = sqlalchemy.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{database}"'))
        env[PG_URL_ENV] = sqlalchemy.make_url(pg_admin_url).set(database=database).render_as_string(False)
    try:
        out = subprocess.run([sys.executable, __file__, "--child", variant, str(size)], cwd=ROOT, env=env,
                             capture_output=True, text=True, check=True)  # fmt: skip
    finally:
        if variant.startswith("pg-"):
            with admin.connect() as conn:
                conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            admin.dispose()
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if not result["ok"]:
        raise SystemExit(f"linear-{size} failed under {variant}: {out.stderr[-2000:]}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,200", help="comma-separated chain lengths")
    parser.add_argument("--reps", type=int, default=5, help="rounds (sizes and variants interleaved)")
    parser.add_argument("--quick", action="store_true", help="sizes 10,20 and one round, to check that it works")
    parser.add_argument("--write", action="store_true", help="rewrite the section of docs/benchmarks.md")
    parser.add_argument("--postgres", metavar="URL", help="also PostgreSQL (a fresh database per run on this server)")
    parser.add_argument("--child", nargs=2, metavar=("VARIANT", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    sizes = [10, 20] if args.quick else [int(s) for s in args.sizes.split(",")]
    reps = 1 if args.quick else args.reps
    variants = VARIANTS + (PG_VARIANTS if args.postgres else ())
    results: dict[tuple[str, int], list[dict[str, Any]]] = {(v, n): [] for v in variants for n in sizes}
    load_before = os.getloadavg()
    for rep in range(reps):
        order = variants[rep % len(variants) :] + variants[: rep % len(variants)]
        for size in sizes if rep % 2 == 0 else list(reversed(sizes)):
            for variant in order:
                result = measure(variant, size, args.postgres)
                results[(variant, size)].append(result)
                print(f"round {rep + 1}: linear-{size} {variant}: {result}", flush=True)
    load_after = os.getloadavg()
    command = (
        "bench/bench_event_writes.py --quick"
        if args.quick
        else f"bench/bench_event_writes.py --sizes {','.join(map(str, sizes))} --reps {reps}"
    ) + (f" --postgres {sqlalchemy.make_url(args.postgres).render_as_string(True)}" if args.postgres else "")
    lines = [
        f"## {SECTION}",
        "",
        f"`.venv/bin/python {command}`: a Dagster job linear-N (N no-op ops in a chain) run with "
        "`execute_in_process` in a fresh process on a fresh Dagster home, its event log Dagster's "
        "`SqliteEventLogStorage` (`dagster`) or `MaestroSqliteEventLogStorage` as the project's `dagster.yaml` sets "
        "it (`maestro`, synchronous FULL) or with `synchronous: NORMAL` (`maestro-normal`, measured, not used); "
        "with `--postgres`, on a fresh PostgreSQL database of that server, dagster-postgres's storage (`pg-dagster`, "
        "`storage: postgres`) or the project's `dagster.postgres.yaml` (`pg-maestro`, "
        "`MaestroPostgresEventLogStorage`); ratios against the class of Dagster of the same database. "
        f"Medians of {reps} interleaved round(s); {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}; load average {load_before[0]:.2f} before and "
        f"{load_after[0]:.2f} after.",
        "",
        "| run | storage | events | wall, median | CPU, median | wall vs Dagster's class | CPU vs Dagster's class |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        for variant in variants:
            base = results[("pg-dagster" if variant.startswith("pg-") else "dagster", size)]
            base_wall = statistics.median(r["wall"] for r in base)
            base_cpu = statistics.median(r["cpu"] for r in base)
            rs = results[(variant, size)]
            wall = statistics.median(r["wall"] for r in rs)
            cpu = statistics.median(r["cpu"] for r in rs)
            lines.append(
                f"| linear-{size} | {variant} | {rs[0]['events']} | {wall:.2f} s | {cpu:.2f} s | "
                f"{wall / base_wall:.2f}x | {cpu / base_cpu:.2f}x |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_sections({SECTION: text})


if __name__ == "__main__":
    main()
