"""SQL reporting at scale on PostgreSQL: the report and seed queries over raw rows and rollups, one day's rollup,
retention and the mirror lag beside it, a ``/metrics`` scrape.

A fresh PostgreSQL database is migrated and filled by SQL (``generate_series``): 100,000 executions of 20 workflows
over three UTC days (2,000 with 500 events each, then 50,000 and 48,000), 10 node states each (1,000,000) and
5,000,000 events in all, one Dagster run row each. Then, in one run:
1. every view query a report or a dashboard uses and the seed's four monitoring queries, over the raw rows; the
   rollup queries (after every day is rolled up); one execution's nodes and timeline: median of ``--reps``;
2. materializing each day's rollups (the largest: 50,000 executions) and checking them;
3. ``/metrics`` (the API app in this process, its TablesCollector; rollups present, so only the raw rows of days not
   rolled up are read);
4. retention of the first day (1,000,000 events, 2,000 Dagster run ids to delete) in its batches, while a real
   ``maestro run linear-100 --in-process`` on the same database is mirrored: the lag (first seen by a 20 ms poller
   - the Dagster event's timestamp) of each of its events.

Usage: ``.venv/bin/python bench/bench_reporting.py [--postgres URL] [--reps 5] [--write]`` (alone on the machine).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _benchdoc import write_sections  # noqa: E402

SECTION = "SQL reporting at scale (PostgreSQL)"
DAY0, DAY1, DAY2 = date(2026, 8, 31), date(2026, 9, 1), date(2026, 9, 2)
EXECUTIONS, NODES, EVENTS, WORKFLOWS = 100_000, 10, 50, 20
PYTHON = sys.executable


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _env(url: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAESTRO_", "POSTGRES_", "DAGSTER_"))}
    env.update(
        MAESTRO_DATABASE_URL=url,
        MAESTRO_HOME=str(home),
        MAESTRO_DEFS_DIR=str(home / "defs"),
        MAESTRO_SYNC_DEFS_ON_LOAD="false",
        DAGSTER_HOME=str(home / "dagster"),
    )
    return env


GENERATE = [
    """INSERT INTO workflow_definitions (id, name, workflow_type, version, nodes, edges, definition, content_hash,
        is_valid, validation_errors, created_at, updated_at)
       SELECT 'w' || lpad(w::text, 2, '0'), 'w' || w, 'custom', 1, '{}', '[]', '{}', repeat('0', 64), true, '[]',
              now(), now() FROM generate_series(0, :workflows - 1) AS w""",
    """INSERT INTO workflow_executions (id, workflow_id, workflow_version, status, total_nodes, completed_nodes,
        failed_nodes, progress_percent, created_at, updated_at, started_at, completed_at)
       SELECT 'x' || i, 'w' || lpad((i % :workflows)::text, 2, '0'), 1,
              CASE WHEN i % 25 = 0 THEN 'failed' WHEN i % 97 = 0 THEN 'cancelled' ELSE 'completed' END,
              :nodes, :nodes, 0, 100.0, t, t, t + interval '1 second', t + (1 + i % 300) * interval '1 second'
       FROM generate_series(:offset, :offset + :count - 1) AS i,
            LATERAL (SELECT CAST(:day AS timestamptz) + (i - :offset) * (86000.0 / :count) * interval '1 second'
                     AS t) AS s""",
    """INSERT INTO execution_runs (run_id, execution_id, kind, status, trigger, last_storage_id, mirror_complete,
        created_at, updated_at)
       SELECT 'r' || i, 'x' || i, 'initial', 'completed', 'api', 0, true, now(), now()
       FROM generate_series(0, :executions - 1) AS i""",
    """INSERT INTO node_states (id, execution_id, node_id, status, attempt_count, run_attempt, max_retries,
        duration_seconds, quality_score, error_type, created_at, updated_at, started_at, completed_at)
       SELECT md5(i || '-' || j), 'x' || i, 'n' || j,
              CASE WHEN i % 25 = 0 AND j = 5 THEN 'failed' WHEN i % 25 = 0 AND j > 5 THEN 'blocked'
                   ELSE 'completed' END,
              CASE WHEN (i + j) % 13 = 0 THEN 2 WHEN i % 25 = 0 AND j > 5 THEN 0 ELSE 1 END, 1, 3,
              0.1 * (1 + (i + j) % 20), 0.5 + ((i * j) % 50) / 100.0,
              CASE WHEN i % 25 = 0 AND j = 5 THEN 'ValueError' END, now(), now(), now(), now()
       FROM generate_series(0, :executions - 1) AS i, generate_series(0, :nodes - 1) AS j""",
    """INSERT INTO execution_events (execution_id, event_type, node_id, message, data, timestamp, dagster_run_id,
        dagster_storage_id, dagster_event_part)
       SELECT 'x' || i,
              CASE WHEN k = 0 THEN 'workflow_started' WHEN k = :events - 1 THEN 'workflow_completed'
                   WHEN i % 25 = 0 AND k = 20 THEN 'node_failed' WHEN k % 2 = 1 THEN 'node_started'
                   ELSE 'node_completed' END,
              'n' || (k % 10), NULL,
              CASE WHEN i % 25 = 0 AND k = 20
                   THEN CAST('{"error": "bad value", "error_type": "ValueError", "attempts": 1}' AS json)
                   ELSE NULL END,
              CAST(:day AS timestamptz) + (i - :offset) * (86000.0 / :count) * interval '1 second'
                  + k * interval '10 ms',
              'r' || i, k + 1, 0
       FROM generate_series(:offset, :offset + :count - 1) AS i, generate_series(0, :events - 1) AS k""",
]

RAW_QUERIES = {
    "seed 1: executions by status": "SELECT status, COUNT(*) FROM report_executions GROUP BY status",
    "seed 2: success rate": "SELECT success_rate FROM report_summary",
    "seed 3: average duration": "SELECT avg_duration_seconds FROM report_summary",
    "seed 4: node failure rate": "SELECT workflow_id, node_id, failure_rate FROM report_node_stats",
    "report_workflow_stats (all)": "SELECT * FROM report_workflow_stats",
    "report_executions, one workflow, one day": "SELECT * FROM report_executions WHERE workflow_id = 'w03' "
    "AND created_at >= '2026-09-02' AND created_at < '2026-09-03'",
    "report_failures, latest 20": "SELECT * FROM report_failures ORDER BY failed_at DESC LIMIT 20",
    "one execution: report_executions row": "SELECT * FROM report_executions WHERE execution_id = :eid",
    "one execution: its nodes": "SELECT * FROM node_states WHERE execution_id = :eid",
    "one execution: its timeline": "SELECT * FROM execution_events WHERE execution_id = :eid ORDER BY timestamp",
}
ROLLUP_QUERIES = {
    "rollups: summary per workflow over the days": "SELECT workflow_id, SUM(executions), SUM(completed), "
    "100.0 * SUM(completed) / NULLIF(SUM(completed + failed + cancelled), 0), "
    "SUM(duration_sum_seconds) / NULLIF(SUM(duration_count), 0) FROM daily_workflow_stats "
    "WHERE day BETWEEN '2026-08-31' AND '2026-09-02' GROUP BY workflow_id",
    "rollups: node failure rate over the days": "SELECT workflow_id, node_id, "
    "100.0 * SUM(failed) / NULLIF(SUM(completed + failed), 0) FROM daily_node_stats GROUP BY workflow_id, node_id",
    "rollups: success rate per day": "SELECT day, 100.0 * SUM(completed) / NULLIF(SUM(completed + failed + "
    "cancelled), 0) FROM daily_workflow_stats GROUP BY day ORDER BY day",
}


def timed(fn: Callable[[], Any], reps: int) -> float:
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@contextmanager
def database(admin_url: str):
    name = f"maestro_bench_reporting_{os.getpid()}"
    admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield sqlalchemy.make_url(admin_url).set(database=name).render_as_string(False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def lag_during(env: dict[str, str], engine: sqlalchemy.Engine, work: Callable[[], Any]) -> tuple[Any, list[float]]:
    """Run ``work`` while ``maestro run linear-100 --in-process`` runs; the lag (ms) of each of the run's events."""
    with engine.connect() as conn:
        last = conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM execution_events")).scalar_one()
    seen: dict[int, float] = {}
    stamps: dict[int, float] = {}
    stmt = text(
        "SELECT ev.id, ev.timestamp FROM execution_events ev JOIN workflow_executions e ON e.id = ev.execution_id "
        "WHERE ev.id > :last AND e.workflow_id = 'linear-100' ORDER BY ev.id"
    )
    cursor = {"last": last}

    def poll() -> None:
        with engine.connect() as conn:
            rows = conn.execute(stmt, {"last": cursor["last"]}).all()
        now = time.time()
        for row_id, stamp in rows:
            seen.setdefault(row_id, now)
            stamps[row_id] = stamp.timestamp()
            cursor["last"] = max(cursor["last"], row_id)

    outcome: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: outcome.update(result=work()), name="retention")
    proc = subprocess.Popen([PYTHON, "-m", "maestro_dagster", "run", "linear-100", "--in-process"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    thread.start()
    while proc.poll() is None:
        poll()
        time.sleep(0.02)
    poll()
    thread.join()
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.returncode == 0, f"maestro run linear-100 exited {proc.returncode}: {err[-2000:]}"
    return outcome.get("result"), [(seen[i] - stamps[i]) * 1000 for i in seen]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--executions", type=int, default=EXECUTIONS, help="half a day each (smaller: a smoke run)")
    parser.add_argument("--write", action="store_true", help="rewrite the section of docs/benchmarks.md")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with database(args.postgres) as url, tempfile.TemporaryDirectory() as tmp:
        # Day 0 (retention's): executions with 500 events each, 1,000,000 events at full size; days 1 and 2: the
        # rest, half each, with as many events as make 5,000,000 in all.
        n0 = args.executions // 50
        n1 = args.executions // 2
        n2 = args.executions - n0 - n1
        per = round((EVENTS * args.executions - 500 * n0) / (n1 + n2))
        segments = [(DAY0, 0, n0, 500), (DAY1, n0, n1, per), (DAY2, n0 + n1, n2, per)]
        eid = {"eid": f"x{n0 + 7}"}
        home = Path(tmp)
        (home / "defs").mkdir()
        (home / "dagster").mkdir()
        env = _env(url, home)
        os.environ.update(env)
        from maestro_dagster.api.routes_system import TablesCollector
        from maestro_dagster.db import migrate
        from maestro_dagster.db.session import get_db
        from maestro_dagster.defs_store import store_definition
        from maestro_dagster.instance import get_instance
        from maestro_dagster.reporting import queries, retention, rollups
        from maestro_dagster.settings import get_settings

        settings = get_settings()
        migrate.upgrade(settings)
        schema = settings.schema_name
        engine = sqlalchemy.create_engine(url, connect_args={"options": f"-csearch_path={schema},public"})
        started = time.perf_counter()
        with engine.begin() as conn:
            for stmt in GENERATE:
                for day, offset, count, events in segments if ":offset" in stmt else [(None, 0, 0, 0)]:
                    params = {
                        **{"workflows": WORKFLOWS, "executions": args.executions, "nodes": NODES},
                        **{"day": f"{day} 00:00:00+00", "offset": offset, "count": count, "events": events},
                    }
                    conn.execute(text(stmt), {k: v for k, v in params.items() if f":{k}" in stmt})
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
        progress(f"generated in {time.perf_counter() - started:.0f} s")
        counts = {}
        with engine.connect() as conn:
            for table in ("workflow_executions", "node_states", "execution_events"):
                counts[table] = conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()

        def query(sql: str) -> Callable[[], Any]:
            def run() -> Any:
                with engine.connect() as conn:
                    return conn.execute(text(sql), eid if ":eid" in sql else {}).all()

            return run

        window = queries.Window(datetime(2026, 8, 31, tzinfo=UTC), datetime(2026, 9, 3, tzinfo=UTC))

        def reports(label: str) -> dict[str, float]:
            out = {}
            for name, fn in (("summary", queries.summary), ("nodes", queries.nodes), ("failures", queries.failures)):

                def run(fn: Callable[..., Any] = fn) -> None:
                    with get_db(settings) as session:
                        fn(session, window)

                out[f"maestro report {name} (3 days, {label})"] = timed(run, args.reps)
            return out

        raw = {name: timed(query(sql), args.reps) for name, sql in RAW_QUERIES.items()}
        raw.update(reports("raw rows"))
        progress(f"raw queries: {raw}")
        rollup_times = []
        for day in (DAY0, DAY1, DAY2):
            begun = time.perf_counter()
            with get_db(settings, immediate=True) as session:
                result = rollups.rebuild_day(session, day)
            built = time.perf_counter() - begun
            with get_db(settings) as session:
                found = rollups.check_day(session, day)
            rollup_times.append((day, result.executions, built, time.perf_counter() - begun - built, found))
        progress(f"rollups: {rollup_times}")
        rolled = {name: timed(query(sql), args.reps) for name, sql in ROLLUP_QUERIES.items()}
        instance = get_instance(settings)
        collector = TablesCollector(settings, lambda: 0.0)

        def scrape() -> None:
            from prometheus_client import CollectorRegistry, generate_latest

            registry = CollectorRegistry()
            registry.register(collector)
            generate_latest(registry)

        scrape_time = timed(scrape, args.reps)
        progress(f"scrape: {scrape_time * 1000:.0f} ms")
        with get_db(settings) as session:
            store_definition(session, {"id": "linear-100", "workflow_type": "linear",
                                       "nodes": {f"n{i:03d}": {"executor": "noop"} for i in range(100)},
                                       "edges": [{"source": f"n{i:03d}", "target": f"n{i + 1:03d}"}
                                                 for i in range(99)]}, settings, source="bench")  # fmt: skip

        @contextmanager
        def scope():
            with get_db(settings) as session:
                yield session

        def prune() -> tuple[Any, float]:
            begun = time.perf_counter()
            now = datetime(2026, 9, 2, tzinfo=UTC)  # older than 1 day: day 0 only
            report = retention.apply_retention(scope, instance, older_than=timedelta(days=1), now=now)
            return report, time.perf_counter() - begun

        (report, prune_seconds), lags = lag_during(env, engine, prune)
        rolled.update(reports("day 0 from its rollups"))
        baseline_lags = lag_during(env, engine, lambda: None)[1]
        instance.dispose()
        removed = report.total
        engine.dispose()
    load_after = os.getloadavg()
    lines = [
        f"## {SECTION}",
        "",
        f"`.venv/bin/python bench/bench_reporting.py --reps {args.reps} --executions {args.executions} --write`: "
        f"a fresh PostgreSQL database filled by SQL with {counts['workflow_executions']:,} executions of "
        f"{WORKFLOWS} workflows over three UTC days ({n0:,} with 500 events each on {DAY0}, {n1:,} on {DAY1}, "
        f"{n2:,} on {DAY2}, {per} events each), {counts['node_states']:,} node states and "
        f"{counts['execution_events']:,} events; "
        f"medians of {args.reps}; {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average {load_before[0]:.2f} before and {load_after[0]:.2f} after.",
        "",
        "| query | over | median |",
        "|---|---|---:|",
    ]
    lines += [f"| `{name}` | raw rows (views) | {t * 1000:.1f} ms |" for name, t in raw.items()]
    lines += [f"| `{name}` | rollups | {t * 1000:.1f} ms |" for name, t in rolled.items()]
    lines += ["", "| one day's rollups | executions | build | check | differences |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {d} | {n:,} | {b:.2f} s | {c:.2f} s | {len(f)} |" for d, n, b, c, f in rollup_times]
    lines += [
        "",
        f"- `/metrics` scrape (TablesCollector, every day rolled up): {scrape_time * 1000:.1f} ms.",
        f"- Retention of {DAY0} (`apply_retention`, its default batches): removed {removed.executions:,} executions, "
        f"{removed.node_states:,} node states, {removed.events:,} events in {prune_seconds:.1f} s "
        f"({removed.events / prune_seconds:,.0f} events/s).",
        f"- Mirror lag of a `maestro run linear-100 --in-process` on the same database during it: p50 "
        f"{pct(lags, 0.5):.0f} ms, **p95 {pct(lags, 0.95):.0f} ms**, max {max(lags):.0f} ms over {len(lags)} events; "
        f"the same run alone after it: p95 {pct(baseline_lags, 0.95):.0f} ms.",
    ]
    worst_raw = max(t for name, t in raw.items() if not name.startswith("one execution"))
    one = max(t for name, t in raw.items() if name.startswith("one execution"))
    worst_rollup = max(t for name, t in rolled.items() if name.startswith("rollups:"))
    largest = max(rollup_times, key=lambda r: r[1])

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines += [
        "",
        f"- Target <= 1 s for each query over raw rows: {verdict(worst_raw <= 1)} (slowest {worst_raw * 1000:.0f} ms).",
        f"- Target <= 200 ms from the rollups: {verdict(worst_rollup <= 0.2)} (slowest rollup query "
        f"{worst_rollup * 1000:.1f} ms; `maestro report` over a window that also holds raw days costs what its raw "
        "part costs, as the rows above show).",
        f"- Target <= 5 ms for one execution's row, nodes or timeline: {verdict(one <= 0.005)} ({one * 1000:.1f} ms).",
        f"- Target <= 10 s to materialize one day of {largest[1]:,} executions: {verdict(largest[2] <= 10)} "
        f"({largest[2]:.2f} s, and {largest[3]:.2f} s to check it).",
        f"- Target mirror lag p95 <= 1 s during retention: {verdict(pct(lags, 0.95) <= 1000)} "
        f"({pct(lags, 0.95):.0f} ms).",
        f"- Target `/metrics` <= 100 ms: {verdict(scrape_time <= 0.1)} ({scrape_time * 1000:.1f} ms).",
    ]
    body = "\n".join(lines) + "\n"
    print(body)
    if args.write:
        write_sections({SECTION: body})


if __name__ == "__main__":
    main()
