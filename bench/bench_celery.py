"""Scale-out on Celery: steps on `maestro worker` processes (real RabbitMQ, real PostgreSQL).

    .venv/bin/python bench/bench_celery.py [--quick] [--write] [--reps N] [--postgres URL] [--broker URL]

On a fresh PostgreSQL database of ``--postgres``'s server, with workers started as `maestro worker` processes (each
in an empty directory of its own, concurrency 1), every figure the wall time of a whole `maestro run` (the run
orchestrated in that process, its steps on the workers):

- **fan-out of 100 sleeping nodes**: ``src -> m1..m100 (each sleeps 0.5 s) -> sink`` with 1, 2 and 4 workers, and
  the speed-up over 1 worker (ideal: the number of workers; 100 x 0.5 s = 50 s of sleep);
- **per-node overhead** on no-op nodes: a chain of 20 against a chain of 1, ``(T20 - T1) / 19``, with the Celery
  executor (2 workers), the default multiprocess executor and ``--in-process``;
- **throughput**: 20 executions of a 5-node chain started at once (20 `maestro run` processes) with 4 workers, and
  the same 20 run ``--in-process`` (the local multiprocess executor at 20 runs at once exceeds PostgreSQL's
  default 100 connections), in executions per minute.

Variants interleaved within each measurement, medians of ``--reps`` (default 3; ``--quick`` 1). Queues are named
for the run, so nothing else on the broker takes its steps. ``--write`` replaces the section "Scale-out: Celery
workers" of docs/benchmarks.md. Run it alone: the workers and the runs share the machine's cores.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml
from _benchdoc import write_sections
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
MAESTRO = str(Path(sys.executable).parent / "maestro")
SECTION = "Scale-out: Celery workers"
SCRUB_PREFIXES = ("MAESTRO_", "POSTGRES_", "DAGSTER_")
EXAMPLES = "maestro_examples.nodes"
FAN, SLEEP, CHAIN, THROUGHPUT_RUNS = 100, 0.5, 20, 20


def _definition(workflow_id: str, nodes: dict, edges: list[tuple[str, str]], **fields: object) -> dict:
    return {"id": workflow_id, "nodes": nodes, "edges": [{"source": s, "target": t} for s, t in edges], **fields}


def _chain(workflow_id: str, count: int, **fields: object) -> dict:
    ids = [f"n{i}" for i in range(1, count + 1)]
    return _definition(workflow_id, {i: {"executor": "noop"} for i in ids}, list(itertools.pairwise(ids)), **fields)


def definitions(queue: str) -> list[dict]:
    sleeper = {"executor": f"{EXAMPLES}:sleep", "config": {"seconds": SLEEP}}
    middle = [f"m{i}" for i in range(1, FAN + 1)]
    fan_nodes = {"src": {"executor": "noop"}, **{m: sleeper for m in middle}, "sink": {"executor": "noop"}}
    fan_edges = [("src", m) for m in middle] + [(m, "sink") for m in middle]
    celery = {"executor": "celery", "queue": queue}
    return [
        _definition("bench_fan", fan_nodes, fan_edges, **celery),
        _chain("bench_chain20_celery", CHAIN, **celery),
        _chain("bench_chain1_celery", 1, **celery),
        _chain("bench_chain20_local", CHAIN),
        _chain("bench_chain1_local", 1),
        _chain("bench_chain5_celery", 5, **celery),
        _chain("bench_chain5_local", 5),
    ]


class Bench:
    def __init__(self, pg_admin: str, broker: str) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="maestro-bench-celery-"))
        self.queue = f"bench{uuid.uuid4().hex[:8]}"
        self.db_name = f"maestro_bench_celery_{uuid.uuid4().hex[:8]}"
        admin = make_url(pg_admin)
        self.admin_engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with self.admin_engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.db_name}"'))
        self.url = admin.set(database=self.db_name).render_as_string(hide_password=False)
        base = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB_PREFIXES)}
        self.base = {**base, "MAESTRO_DATABASE_URL": self.url, "MAESTRO_CELERY_BROKER_URL": broker}
        self.base["MAESTRO_EXECUTOR_ALLOWLIST"] = "maestro_examples"
        self.orchestrator = self.work / "orchestrator"
        (self.orchestrator / "defs").mkdir(parents=True)
        self.env = {**self.base, "MAESTRO_HOME": str(self.orchestrator / "home"), "MAESTRO_DEFS_DIR": "defs"}
        self.workers: list[subprocess.Popen] = []

    def setup(self) -> None:
        for raw in definitions(self.queue):
            (self.orchestrator / "defs" / f"{raw['id']}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        for args in (["db", "upgrade"], ["defs", "sync"]):
            subprocess.run([MAESTRO, *args], cwd=self.orchestrator, env=self.env, check=True, capture_output=True)

    def scale(self, count: int) -> None:
        """Exactly ``count`` workers of the bench queue (warm shutdown of the extra ones, start of missing ones)."""
        while len(self.workers) > count:
            proc = self.workers.pop()
            proc.terminate()
            proc.wait(120)
        while len(self.workers) < count:
            index = len(self.workers) + 1
            root = self.work / f"worker{index}-{uuid.uuid4().hex[:4]}"
            root.mkdir()
            log = open(root / "worker.log", "wb")  # noqa: SIM115 - the process's own log, kept with it
            env = {**self.base, "MAESTRO_HOME": str(root / "home")}
            args = [MAESTRO, "worker", "--queue", self.queue, "--name", f"bench{index}@{root.name}"]
            proc = subprocess.Popen(args, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 180
            while b" ready." not in (root / "worker.log").read_bytes():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"worker did not start:\n{(root / 'worker.log').read_text()[-2000:]}")
                time.sleep(0.2)
            self.workers.append(proc)

    def run(self, *args: str) -> float:
        started = time.monotonic()
        done = subprocess.run([MAESTRO, "run", *args], cwd=self.orchestrator, env=self.env, capture_output=True)
        elapsed = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"maestro run {' '.join(args)} failed:\n{done.stdout.decode()[-2000:]}")
        return elapsed

    def burst(self, count: int, *args: str) -> float:
        """``count`` `maestro run` processes started at once; the wall time until the last one ends."""
        started = time.monotonic()
        procs = [
            subprocess.Popen([MAESTRO, "run", *args], cwd=self.orchestrator, env=self.env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(count)
        ]  # fmt: skip
        codes = [p.wait() for p in procs]
        if any(codes):
            raise SystemExit(f"{codes.count(0)} of {count} runs of {args[0]} succeeded")
        return time.monotonic() - started

    def close(self) -> None:
        self.scale(0)
        with self.admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
        self.admin_engine.dispose()
        shutil.rmtree(self.work, ignore_errors=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def measure(bench: Bench, reps: int) -> dict[str, float]:
    fan: dict[int, list[float]] = {1: [], 2: [], 4: []}
    overhead: dict[str, list[float]] = {"celery": [], "multiprocess": [], "in-process": []}
    throughput: dict[str, list[float]] = {"celery": [], "local": []}
    orders = [(1, 2, 4), (4, 2, 1), (2, 4, 1)]
    for rep in range(reps):
        for workers in orders[rep % len(orders)]:
            bench.scale(workers)
            fan[workers].append(bench.run("bench_fan"))
        bench.scale(2)
        for name in (
            ["celery", "multiprocess", "in-process"] if rep % 2 == 0 else ["in-process", "multiprocess", "celery"]
        ):
            suffix, extra = (
                ("celery", []) if name == "celery" else ("local", ["--in-process"] if name == "in-process" else [])
            )
            t20 = bench.run(f"bench_chain20_{suffix}", *extra)
            t1 = bench.run(f"bench_chain1_{suffix}", *extra)
            overhead[name].append((t20 - t1) / (CHAIN - 1))
        bench.scale(4)
        for name in ["celery", "local"] if rep % 2 == 0 else ["local", "celery"]:
            args = ["bench_chain5_celery"] if name == "celery" else ["bench_chain5_local", "--in-process"]
            throughput[name].append(bench.burst(THROUGHPUT_RUNS, *args))
    figures = {f"fan_{w}": median(v) for w, v in fan.items()}
    figures.update({f"overhead_{k}": median(v) for k, v in overhead.items()})
    figures.update({f"burst_{k}": median(v) for k, v in throughput.items()})
    return figures


def render(figures: dict[str, float], reps: int, load: tuple[tuple[float, ...], tuple[float, ...]]) -> str:
    f = figures
    one = f["fan_1"]
    lines = [
        f"## {SECTION}",
        "",
        f"`.venv/bin/python bench/bench_celery.py --reps {reps} --write` (one run; real RabbitMQ and PostgreSQL on "
        f"this machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}). Each worker "
        "is a `maestro worker --concurrency 1` process in an empty directory of its own; every figure is the wall time "
        f"of whole `maestro run` commands, medians of {reps} interleaved rounds.",
        "",
        f"Fan-out of {FAN} nodes that each sleep {SLEEP} s ({FAN * SLEEP:.0f} s of sleep), executor `celery`:",
        "",
        "| workers | wall time | speed-up over 1 worker | ideal |",
        "|---|---|---|---|",
    ]
    for workers in (1, 2, 4):
        lines.append(f"| {workers} | {f[f'fan_{workers}']:.1f} s | {one / f[f'fan_{workers}']:.2f}x | {workers}x |")
    lines += [
        "",
        f"Per-node overhead on no-op nodes, `(T(chain of {CHAIN}) - T(chain of 1)) / {CHAIN - 1}` (a chain: every "
        "step's start is on the critical path):",
        "",
        "| executor | per node | vs in-process |",
        "|---|---|---|",
    ]
    base = f["overhead_in-process"]
    for name, label in (("in-process", "local, `--in-process`"), ("multiprocess", "local (forkserver processes)"),
                        ("celery", "celery, 2 workers")):  # fmt: skip
        value = f[f"overhead_{name}"]
        lines.append(f"| {label} | {value * 1000:.0f} ms | {value / base:.1f}x |")
    lines += [
        "",
        "Dagster's Celery loop looks at its submitted steps once a second (`TICK_SECONDS = 1` in dagster-celery), so "
        "in a chain each step waits up to a second for its predecessor's result to be seen; steps that run side by "
        "side (the fan-out) share the tick.",
        "",
        f"Throughput: {THROUGHPUT_RUNS} executions of a 5-node chain started at once ({THROUGHPUT_RUNS} `maestro run` "
        "processes, each orchestrating its run):",
        "",
        "| executor | wall time | executions per minute |",
        "|---|---|---|",
        f"| local, `--in-process` | {f['burst_local']:.1f} s | {THROUGHPUT_RUNS * 60 / f['burst_local']:.0f} |",
        f"| celery, 4 workers | {f['burst_celery']:.1f} s | {THROUGHPUT_RUNS * 60 / f['burst_celery']:.0f} |",
        "",
        f"The local comparison is `--in-process`: {THROUGHPUT_RUNS} runs at once with the multiprocess executor (a "
        "step process per node, each with its own database connections) exceed PostgreSQL's default `max_connections` "
        '(100) and some runs fail with "too many clients" (3 of 20 in a trial of this script, 6 of 30 by hand). '
        "With Celery the step processes are the workers' (a fixed number of connections however many runs); "
        "through the daemon the run queue (`max_concurrent_runs`) bounds the local executor's runs instead.",
        "",
        f"Load average before {load[0][0]:.2f} / {load[0][1]:.2f} / {load[0][2]:.2f}, after "
        f"{load[1][0]:.2f} / {load[1][1]:.2f} / {load[1][2]:.2f} (1/5/15 min). On {os.cpu_count()} cores the "
        "workers, the orchestrating processes, PostgreSQL and RabbitMQ share the same CPUs: the speed-up of sleeping "
        "nodes is what more workers buy; CPU-bound nodes scale with machines, not with workers on one machine.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--postgres", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--broker", default="pyamqp://guest:guest@127.0.0.1:5672//")
    args = parser.parse_args()
    reps = 1 if args.quick else args.reps
    bench = Bench(args.postgres, args.broker)
    try:
        bench.setup()
        before = os.getloadavg()
        figures = measure(bench, reps)
        after = os.getloadavg()
    finally:
        bench.close()
    section = render(figures, reps, (before, after))
    print(section)
    if args.write:
        write_sections({SECTION: section})


if __name__ == "__main__":
    main()
