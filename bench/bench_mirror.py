"""Benchmarks of the mirror (Dagster events -> Maestro's tables), on SQLite and on PostgreSQL.

    .venv/bin/python bench/bench_mirror.py [--quick] [--write] [--backend sqlite|postgresql] [--only PART]

All in one run, side by side:

1. Overhead: ``run_workflow(..., in_process=True)`` (the ``execute_job`` path, which uses the job's executor) of
   linear-100 (a chain of 100 no-op nodes) and fanout-100 (1 -> 98 -> 1), each also with another process keeping
   one core busy, and sleepy-4 (4 nodes that sleep 5 s each: few events), with the in-run mirror
   (``MAESTRO_MIRROR_IN_RUN=true``) and without it (``false``), same storage, repetitions interleaved (9 each,
   sleepy-4 3; ``--quick`` 1). Without the in-run mirror ``run_workflow`` still makes one mirror pass after the
   job returns; that pass is timed too, so the job alone (no mirroring at all) is reported as well. Every run is
   checked: execution ``completed``, all its nodes completed.
2. Lag: a mirrored run of linear-100 in a subprocess (``python -m maestro_dagster run <wf> --in-process``); this
   process polls ``execution_events`` every ~20 ms; lag = first seen - the Dagster event's timestamp.
3. Catch-up: ``sync_runs(instance)`` (``maestro mirror sync --all``) over >= 50,000 Dagster events of the types the
   mirror reads (``--quick`` 5,000): one real run of fanout-100 without the in-run mirror, then copies of it as new
   Dagster runs carrying the same events.

Each part runs in a fresh temporary MAESTRO_HOME: the Maestro SQLite file and Dagster's default SQLite storage, or a
temporary PostgreSQL database for both (created on ``MAESTRO_TEST_POSTGRES_URL``, default the local server as user
postgres, like the tests); both are removed afterwards. ``--write`` replaces this script's sections of
docs/benchmarks.md ("Mirror overhead", "Mirror lag", "Mirror catch-up") and keeps every other section.
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import math
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from _benchdoc import DOC, write_sections

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.chdir(ROOT)  # the code location is loaded from the working directory

import dagster  # noqa: E402
from dagster import DagsterRunStatus  # noqa: E402
from dagster._core.events import EVENT_TYPE_TO_PIPELINE_RUN_STATUS  # noqa: E402
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable  # noqa: E402
from dagster._core.utils import make_new_run_id  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402

import maestro_dagster.executions.transport as runs_module  # noqa: E402  (its final pass after the job)
import maestro_dagster.mirror.batch as batch_module  # noqa: E402
import maestro_dagster.mirror.projector as projector_module  # noqa: E402
from maestro_dagster.db import migrate  # noqa: E402
from maestro_dagster.db.models import ExecutionEvent, WorkflowExecution  # noqa: E402
from maestro_dagster.db.session import build_engine, dispose_engines, get_db  # noqa: E402
from maestro_dagster.defs_store import store_definition  # noqa: E402
from maestro_dagster.executions.local import run_workflow  # noqa: E402
from maestro_dagster.instance import get_instance  # noqa: E402
from maestro_dagster.mirror import sync_runs  # noqa: E402
from maestro_dagster.mirror.live import LiveMirror  # noqa: E402
from maestro_dagster.mirror.reducer import MIRRORED_TYPES  # noqa: E402
from maestro_dagster.mirror.verify import verify_execution  # noqa: E402
from maestro_dagster.names import new_execution_id  # noqa: E402
from maestro_dagster.settings import Settings, get_settings, normalise_url  # noqa: E402
from maestro_dagster.tags import TAG_EXECUTION_ID, TAG_WORKFLOW_ID  # noqa: E402

PYTHON = sys.executable
DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
SECTIONS = ("Mirror overhead", "Mirror lag", "Mirror catch-up")
BACKENDS = ("sqlite", "postgresql")
PARTS = ("overhead", "lag", "catchup")
NO_MIRROR = "-nomirror"
# Variables of the developer's shell that would change what the benchmark talks to.
SCRUB_PREFIXES = ("MAESTRO_", "POSTGRES_", "DAGSTER_")
SCRUB_NAMES = ("USE_SQLITE", "SQLITE_PATH", "DB_POOL_SIZE", "DB_MAX_OVERFLOW", "DB_POOL_TIMEOUT", "DB_POOL_RECYCLE")
# What `maestro run` does (Dagster's console log of every event only with --verbose), when run_workflow has it.
RUN_KWARGS = {"log_level": "WARNING"} if "log_level" in inspect.signature(run_workflow).parameters else {}
MIRROR_WARNING = "maestro mirror of run"  # what the live mirror logs when a pass fails (see mirror/live.py)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def load() -> float:
    return os.getloadavg()[0]


# ---- workflows -------------------------------------------------------------------------------------------------


def linear(workflow_id: str, n: int) -> dict[str, Any]:
    ids = [f"n{i:03d}" for i in range(n)]
    edges = [{"source": a, "target": b} for a, b in itertools.pairwise(ids)]
    return {
        "id": workflow_id,
        "workflow_type": "linear",
        "nodes": {i: {"executor": "noop"} for i in ids},
        "edges": edges,
    }


def fanout(workflow_id: str, n: int) -> dict[str, Any]:
    """1 -> n-2 -> 1."""
    middle = [f"m{i:03d}" for i in range(n - 2)]
    nodes = {node: {"executor": "noop"} for node in ("start", *middle, "end")}
    edges = [{"source": "start", "target": m} for m in middle] + [{"source": m, "target": "end"} for m in middle]
    return {"id": workflow_id, "workflow_type": "parallel", "nodes": nodes, "edges": edges}


SLEEPY_NODES, SLEEP_SECONDS = 4, 5


def sleepy(workflow_id: str, n: int = SLEEPY_NODES) -> dict[str, Any]:
    """A chain of ``n`` nodes that each sleep ``SLEEP_SECONDS``: a long run with few events."""
    raw = linear(workflow_id, n)
    sleep = {"executor": "maestro_examples.nodes:sleep", "config": {"seconds": SLEEP_SECONDS}}
    raw["nodes"] = {node_id: dict(sleep) for node_id in raw["nodes"]}
    return raw


def workflows(n: int) -> list[dict[str, Any]]:
    """linear-N, fanout-N and sleepy-4, each also stored as ``<id>-nomirror`` for the runs without the in-run mirror.

    A process compiles a job once (the code location caches it) with the executor the setting chose at that
    moment; the second id lets one process hold the mirrored and the plain job of the same graph.
    """
    return [
        build(f"{shape}-{size}{suffix}", size)
        for shape, build, size in (("linear", linear, n), ("fanout", fanout, n), ("sleepy", sleepy, SLEEPY_NODES))
        for suffix in ("", NO_MIRROR)
    ]


# ---- environment: a temporary Maestro home and database, a Dagster instance beside it -------------------------


class PgAdmin:
    """Creates and drops the temporary PostgreSQL databases (as tests/conftest.py does)."""

    def __init__(self) -> None:
        raw = os.environ.get("MAESTRO_TEST_POSTGRES_URL", DEFAULT_PG_URL)
        self.url = normalise_url(raw, "MAESTRO_TEST_POSTGRES_URL")
        self.engine = create_engine(self.url, isolation_level="AUTOCOMMIT")

    def create(self) -> tuple[str, str]:
        name = f"maestro_bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with self.engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        return name, self.url.set(database=name).render_as_string(hide_password=False)

    def drop(self, name: str) -> None:
        with self.engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def version(self) -> str:
        with self.engine.connect() as conn:
            return str(conn.execute(text("SHOW server_version")).scalar()).split()[0]


@dataclass
class Env:
    backend: str
    settings: Settings
    instance: Any
    n: int
    log: Path  # Dagster's console log and the live mirror's warnings go here

    def set_mirror(self, on: bool) -> None:
        os.environ["MAESTRO_MIRROR_IN_RUN"] = "true" if on else "false"
        get_settings.cache_clear()
        self.settings = get_settings()

    def mirror_warnings(self) -> int:
        return self.log.read_text(errors="replace").count(MIRROR_WARNING) if self.log.exists() else 0


@contextmanager
def quiet_stderr(path: Path) -> Iterator[None]:
    """Send file descriptor 2 (Dagster's console log, Python's last-resort log handler) to a file."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as fh:
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


@contextmanager
def bench_env(backend: str, n: int, pg: PgAdmin | None) -> Iterator[Env]:
    saved = dict(os.environ)
    tmp = Path(tempfile.mkdtemp(prefix=f"maestro_bench_mirror_{backend}_"))
    db_name, instance = None, None
    try:
        for name in list(os.environ):
            if name.startswith(SCRUB_PREFIXES) or name in SCRUB_NAMES:
                del os.environ[name]
        (tmp / "defs").mkdir()
        os.environ.update(
            MAESTRO_HOME=str(tmp / "home"),
            MAESTRO_DEFS_DIR=str(tmp / "defs"),
            MAESTRO_SYNC_DEFS_ON_LOAD="false",
            MAESTRO_EXECUTOR_ALLOWLIST="maestro_examples",
            DAGSTER_DISABLE_TELEMETRY="yes",
        )
        if backend == "postgresql":
            assert pg is not None
            db_name, url = pg.create()
            os.environ["MAESTRO_DATABASE_URL"] = url
        get_settings.cache_clear()
        dispose_engines()
        settings = get_settings()
        migrate.upgrade(settings)
        with get_db(settings) as session:
            for raw in workflows(n):
                store_definition(session, raw, settings, source="bench")[0].raise_if_invalid()
        instance = get_instance(settings)  # also exports DAGSTER_HOME (and the PostgreSQL URL) for subprocesses
        yield Env(backend, settings, instance, n, tmp / "console.log")
    finally:
        if instance is not None:
            instance.dispose()
        dispose_engines()
        if db_name is not None and pg is not None:
            pg.drop(db_name)
        shutil.rmtree(tmp, ignore_errors=True)
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


def nodes_of(workflow_id: str) -> int:
    return int(workflow_id.removesuffix(NO_MIRROR).rsplit("-", 1)[1])


def check_completed(settings: Settings, execution_id: str, n: int) -> None:
    with get_db(settings) as session:
        ex = session.get(WorkflowExecution, execution_id)
        assert ex is not None, f"execution {execution_id} missing"
        assert ex.status.value == "completed", f"{execution_id} is {ex.status.value}"
        assert (ex.completed_nodes, ex.total_nodes) == (n, n), (ex.completed_nodes, ex.total_nodes)


# ---- 1. overhead -----------------------------------------------------------------------------------------------

_post_pass: list[float] = []
_original_mirror_run = runs_module.mirror_run


def _timed_mirror_run(*args: Any, **kwargs: Any) -> Any:
    """The final ``mirror_run`` that ``run_workflow`` makes after the job returns, timed."""
    started = time.perf_counter()
    try:
        return _original_mirror_run(*args, **kwargs)
    finally:
        _post_pass.append(time.perf_counter() - started)


runs_module.mirror_run = _timed_mirror_run
_passes: list[float] = []  # CPU seconds of each pass the live mirror made during the current run
_original_pass_once = LiveMirror.pass_once


def _timed_pass_once(self: LiveMirror, *args: Any, **kwargs: Any) -> None:
    started = time.thread_time()
    try:
        _original_pass_once(self, *args, **kwargs)
    finally:
        _passes.append(time.thread_time() - started)


LiveMirror.pass_once = _timed_pass_once  # type: ignore[method-assign]


@dataclass
class Timed:
    wall: float
    cpu: float  # user + system time of this process (the run, and the mirror thread when there is one)
    post_pass: float
    passes: int  # passes of the live mirror (periodic and final)
    pass_cpu: float  # their CPU time


@dataclass
class OverheadResult:
    backend: str
    workflow: str
    mirrored: list[Timed] = field(default_factory=list)
    plain: list[Timed] = field(default_factory=list)
    warnings: int = 0
    load: tuple[float, float] = (0.0, 0.0)

    def m(self, variant: str, what: str) -> float:
        return median([getattr(t, what) for t in getattr(self, variant)])

    @property
    def ratio(self) -> float:
        return self.m("mirrored", "wall") / self.m("plain", "wall")

    @property
    def cpu_ratio(self) -> float:
        return self.m("mirrored", "cpu") / self.m("plain", "cpu")

    @property
    def job_only(self) -> float:
        return median([t.wall - t.post_pass for t in self.plain])


def one_run(env: Env, workflow_id: str, mirrored: bool) -> Timed:
    env.set_mirror(mirrored)
    _post_pass.clear()
    _passes.clear()
    with quiet_stderr(env.log):
        cpu, started = time.process_time(), time.perf_counter()
        result = run_workflow(env.instance, workflow_id, {}, in_process=True, trigger="bench", **RUN_KWARGS)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert result.success, f"run {result.run_id} of {workflow_id} failed"
    check_completed(env.settings, result.execution_id, nodes_of(workflow_id))
    return Timed(wall, cpu, _post_pass[-1], len(_passes), sum(_passes))


@contextmanager
def busy_core(on: bool) -> Iterator[None]:
    """Another process keeping one core busy meanwhile (a pure-Python loop), when ``on``."""
    if not on:
        yield
        return
    burner = subprocess.Popen([PYTHON, "-c", "while True: pass"])
    try:
        yield
    finally:
        burner.kill()
        burner.wait()


#: (workflow shape, another process keeping a core busy, share of the repetitions: the long runs get a third)
CASES = (("linear", False, 1), ("fanout", False, 1), ("linear", True, 1), ("fanout", True, 1), ("sleepy", False, 3))


def bench_overhead(env: Env, reps: int) -> list[OverheadResult]:
    results = []
    for shape, busy, share in CASES:
        workflow_id = f"{shape}-{SLEEPY_NODES if shape == 'sleepy' else env.n}"
        res = OverheadResult(env.backend, workflow_id + (" + busy core" if busy else ""))
        case_reps = max(1, reps // share)
        with busy_core(busy):
            if shape != "sleepy":  # warm-up: each job compiled once, first-time costs paid
                one_run(env, workflow_id, True)
                one_run(env, workflow_id + NO_MIRROR, False)
            before = load()
            for rep in range(case_reps):
                for mirrored in (True, False) if rep % 2 == 0 else (False, True):
                    timed = one_run(env, workflow_id if mirrored else workflow_id + NO_MIRROR, mirrored)
                    (res.mirrored if mirrored else res.plain).append(timed)
                    kind = "mirrored" if mirrored else "plain"
                    progress(f"  overhead {env.backend} {res.workflow} {rep + 1}/{case_reps} {kind}: {timed.wall:.2f}s")
            res.load = (before, load())
        res.warnings = env.mirror_warnings()
        results.append(res)
    return results


# ---- 2. lag ----------------------------------------------------------------------------------------------------


@dataclass
class LagResult:
    backend: str
    workflow: str
    lags_ms: list[float]
    polls: int
    poll_ms: float
    run_seconds: float

    def pct(self, q: float) -> float:
        ordered = sorted(self.lags_ms)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def bench_lag(env: Env, interval: float = 0.02) -> LagResult:
    env.set_mirror(True)
    workflow_id = f"linear-{env.n}"
    engine = build_engine(env.settings)
    seen: dict[int, float] = {}
    stamps: dict[int, datetime] = {}
    state = {"last": 0, "polls": 0, "poll_time": 0.0}
    stmt = select(ExecutionEvent.id, ExecutionEvent.timestamp).where(ExecutionEvent.dagster_storage_id.is_not(None))

    def poll() -> None:
        started = time.perf_counter()
        with engine.connect() as conn:  # a new transaction each time: sees every row committed before it
            rows = conn.execute(stmt.where(ExecutionEvent.id > state["last"]).order_by(ExecutionEvent.id)).all()
        now = time.time()  # first seen: when the poll returned (an upper bound)
        state["polls"] += 1
        state["poll_time"] += time.perf_counter() - started
        for row_id, stamp in rows:
            seen.setdefault(row_id, now)
            stamps[row_id] = stamp
            state["last"] = max(state["last"], row_id)

    cmd = [PYTHON, "-m", "maestro_dagster", "run", workflow_id, "--in-process"]
    started = time.perf_counter()
    with open(env.log, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None:
                poll()
                time.sleep(interval)
            poll()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    run_seconds = time.perf_counter() - started
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}; see {env.log}"
    with engine.connect() as conn:
        total = conn.execute(
            select(func.count()).select_from(ExecutionEvent).where(ExecutionEvent.dagster_storage_id.is_not(None))
        ).scalar_one()
        execution_id = conn.execute(select(WorkflowExecution.id)).scalar_one()
    engine.dispose()
    check_completed(env.settings, execution_id, env.n)
    assert total == len(seen), f"{total} event rows, {len(seen)} seen while polling"
    lags = [(seen[i] - stamps[i].timestamp()) * 1000 for i in seen]
    return LagResult(
        env.backend, workflow_id, lags, state["polls"], state["poll_time"] / state["polls"] * 1000, run_seconds
    )


# ---- 3. catch-up -----------------------------------------------------------------------------------------------


@dataclass
class CatchupResult:
    backend: str
    template: str
    read_seconds: float  # of ``seconds``, in mirror_run's ``read_events``: Dagster's query and deserialization
    runs: int
    events_per_run: int
    stored_per_run: int
    mirrored_events: int
    rows: int
    seconds: float
    cpu: float
    setup_seconds: float
    load: tuple[float, float]

    @property
    def rate(self) -> float:
        return self.mirrored_events / self.seconds


_read_seconds: list[float] = []
_original_read_events = projector_module.read_events


def _timed_read_events(*args: Any, **kwargs: Any) -> Any:
    started = time.perf_counter()
    try:
        return _original_read_events(*args, **kwargs)
    finally:
        _read_seconds.append(time.perf_counter() - started)


projector_module.read_events = _timed_read_events
_original_read_events_many = batch_module.read_events_many


def _timed_read_events_many(*args: Any, **kwargs: Any) -> Any:
    """The catch-up's reads (``sync_runs`` reads a batch of runs at once, in a thread beside the writes)."""
    started = time.perf_counter()
    try:
        return _original_read_events_many(*args, **kwargs)
    finally:
        _read_seconds.append(time.perf_counter() - started)


batch_module.read_events_many = _timed_read_events_many


def all_records(instance: Any, run_id: str) -> list[Any]:
    out, cursor = [], None
    while True:
        conn = instance.get_records_for_run(run_id, cursor=cursor, limit=10_000)
        out.extend(conn.records)
        if not conn.has_more:
            return out
        cursor = conn.cursor


def store_entries(instance: Any, entries: list[Any]) -> None:
    """Store events as ``instance.store_event`` does, but one transaction per stretch of them.

    ``store_event`` opens a connection and commits for every event (on SQLite it also builds a new engine each
    time): storing ~200,000 events one by one takes the better part of an hour on this machine. The rows are the
    same (the storage's own ``_event_to_row``, in the same order); run status events go through ``store_event``
    itself, which also copies them into SQLite's index shard.
    """
    storage = instance.event_log_storage
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if batch:
            with storage.run_connection(batch[0]["run_id"]) as conn:
                conn.execute(SqlEventLogStorageTable.insert(), batch)
            batch.clear()

    for entry in entries:
        if entry.is_dagster_event and entry.dagster_event_type in EVENT_TYPE_TO_PIPELINE_RUN_STATUS:
            flush()
            instance.store_event(entry)
        else:
            batch.append(storage._event_to_row(entry))
    flush()


def make_copies(env: Env, template_run_id: str, target_events: int) -> tuple[int, int, int]:
    """New Dagster runs with the template's tags (fresh run and execution ids) and all of its events."""
    instance = env.instance
    template = instance.get_run_by_id(template_run_id)
    entries = [r.event_log_entry for r in all_records(instance, template_run_id)]
    per_run = sum(1 for e in entries if e.is_dagster_event and e.dagster_event.event_type_value in MIRRORED_TYPES)
    copies = math.ceil(target_events / per_run)
    workflow_id = template.tags[TAG_WORKFLOW_ID]
    for i in range(copies):
        run_id = make_new_run_id()
        tags = {**template.tags, TAG_EXECUTION_ID: new_execution_id(workflow_id)}
        copy = template._replace(
            run_id=run_id, tags=tags, status=DagsterRunStatus.SUCCESS, root_run_id=None, parent_run_id=None
        )
        instance.add_run(copy)
        store_entries(instance, [entry._replace(run_id=run_id) for entry in entries])
        if (i + 1) % 25 == 0 or i + 1 == copies:
            progress(f"  catch-up {env.backend}: {i + 1}/{copies} runs copied")
    return copies, per_run, len(entries)


def bench_catchup(env: Env, target_events: int) -> CatchupResult:
    env.set_mirror(False)
    with quiet_stderr(env.log):
        template = run_workflow(env.instance, f"fanout-{env.n}{NO_MIRROR}", {}, in_process=True, **RUN_KWARGS)
    assert template.success
    started = time.perf_counter()
    copies, per_run, stored = make_copies(env, template.run_id, target_events)
    setup = time.perf_counter() - started
    with get_db(env.settings) as session:
        rows_before = session.scalar(select(func.count()).select_from(ExecutionEvent))
    before = load()
    _read_seconds.clear()
    cpu, started = time.process_time(), time.perf_counter()
    report = sync_runs(env.instance, settings=env.settings)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    after = load()
    assert len(report.runs) == copies and report.events_read == copies * per_run, (len(report.runs), report.events_read)
    with get_db(env.settings) as session:
        rows = session.scalar(select(func.count()).select_from(ExecutionEvent)) - rows_before
        executions = list(
            session.scalars(select(WorkflowExecution.id).where(WorkflowExecution.id != template.execution_id))
        )
        assert len(executions) == copies, (len(executions), copies)
        for execution_id in (executions[0], executions[-1]):
            assert verify_execution(session, env.instance, execution_id) == [], execution_id
    for execution_id in executions[:: max(1, len(executions) // 10)]:
        check_completed(env.settings, execution_id, env.n)
    return CatchupResult(
        env.backend,
        f"fanout-{env.n}",
        sum(_read_seconds),
        copies,
        per_run,
        stored,
        report.events_read,
        rows,
        seconds,
        cpu,
        setup,
        (before, after),
    )


# ---- report ----------------------------------------------------------------------------------------------------


def machine(pg: PgAdmin | None) -> str:
    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parts = [
        f"{os.cpu_count()} cores ({cpu})",
        f"{platform.system()}",
        f"Python {platform.python_version()}",
        f"Dagster {dagster.__version__}",
        f"SQLite {sqlite3.sqlite_version}",
    ]
    if pg is not None:
        parts.append(f"PostgreSQL {pg.version()} (local server)")
    return ", ".join(parts)


ONE_RUN = (
    "All figures of the three mirror sections come from one run of the script, on a 2-core machine shared with "
    "other work (other engineers' test suites ran at the same time): absolute times move from run to run with "
    "that load; the ratios (mirrored vs plain, from interleaved repetitions) and the CPU figures (user + system "
    "time of the benchmark process, much less sensitive to other load) are what matter."
)


def overhead_md(results: list[OverheadResult], reps: int, n: int, command: str, env_line: str) -> str:
    lines = [
        "## Mirror overhead",
        "",
        f"Reproduce: `{command}`. Machine: {env_line}. {ONE_RUN}",
        "",
        "`run_workflow(..., in_process=True)` (the `execute_job` path of `maestro run --in-process`, which uses the "
        "job's executor; Dagster's console log at WARNING, as `maestro run` does), no-op nodes. *mirrored*: "
        "`MAESTRO_MIRROR_IN_RUN=true`, the executor mirrors the run while it runs (a pass once the run has stored "
        "new events of the types the mirror reads, at most one per 0.5 s, and a final pass at its end). *plain*: "
        "`MAESTRO_MIRROR_IN_RUN=false`, same storage, the same graph stored under a "
        "second id (a process compiles a job once); `run_workflow` still makes one mirror pass after the job "
        "returns, timed as *final pass*; *job only* = plain - final pass (no mirroring at all). Medians of "
        f"{reps} repetition(s) of each variant, interleaved (order swapped every repetition) after one warm-up "
        f"run of each; sleepy-{SLEEPY_NODES} (a chain of {SLEEPY_NODES} nodes that each sleep {SLEEP_SECONDS} s: a "
        f"long run with few events) {max(1, reps // 3)} repetition(s), no warm-up. *+ busy core*: another process "
        "(`python -c 'while True: pass'`) keeps one of the two cores busy during both variants' repetitions. "
        "*live passes*: the passes the mirrored run's executor made (periodic and final), *their CPU s*: their "
        "thread CPU time, part of *mirrored CPU s*. Every run is checked: execution `completed` with all its "
        "nodes completed.",
        "",
        "| backend | workflow | mirrored s | plain s | **ratio mirrored/plain** | mirrored CPU s | plain CPU s "
        "| CPU ratio | live passes | their CPU s | final pass s | job only s | mirrored/job only |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.workflow} | {r.m('mirrored', 'wall'):.2f} | {r.m('plain', 'wall'):.2f} | "
            f"**{r.ratio:.3f}** | {r.m('mirrored', 'cpu'):.2f} | {r.m('plain', 'cpu'):.2f} | {r.cpu_ratio:.3f} | "
            f"{r.m('mirrored', 'passes'):.0f} | {r.m('mirrored', 'pass_cpu'):.2f} | "
            f"{r.m('plain', 'post_pass'):.2f} | {r.job_only:.2f} | {r.m('mirrored', 'wall') / r.job_only:.3f} |"
        )
    worst = max(r.ratio for r in results)
    worst_cpu = max(r.cpu_ratio for r in results)
    verdict = "met" if max(worst, worst_cpu) <= 1.05 else "**not met**"
    lines += [
        "",
        f"Target: mirrored/plain <= 1.05 in wall and in CPU. Worst here: {worst:.3f} wall, {worst_cpu:.3f} CPU: "
        f"{verdict}. "
        f"Live mirror passes that failed (logged warnings): {sum(r.warnings for r in results)}. 1-minute load "
        "average before/after each workflow's repetitions: "
        + ", ".join(f"{r.backend} {r.workflow} {r.load[0]:.1f}/{r.load[1]:.1f}" for r in results)
        + ".",
    ]
    return "\n".join(lines)


def lag_md(results: list[LagResult], command: str, env_line: str) -> str:
    wf = results[0].workflow
    lines = [
        "## Mirror lag",
        "",
        f"Reproduce: `{command}`. Machine: {env_line}. {ONE_RUN}",
        "",
        f"A mirrored run of {wf} in a subprocess (`.venv/bin/python -m maestro_dagster run {wf} "
        "--in-process`, the environment pointing at the temporary home and database). The benchmark process polls "
        "`execution_events` every ~20 ms (a new transaction each time) and notes when each row is first seen: "
        "the time its poll returned, an upper bound. Lag = first seen - the Dagster event's timestamp "
        "(`execution_events.timestamp`). Every event row of the run is counted (checked: as many rows seen while "
        "polling as the table holds at the end).",
        "",
        "| backend | event rows | p50 ms | p95 ms | max ms | polls | poll ms (mean) | subprocess s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {len(r.lags_ms)} | {r.pct(0.5):.0f} | **{r.pct(0.95):.0f}** | {max(r.lags_ms):.0f} | "
            f"{r.polls} | {r.poll_ms:.1f} | {r.run_seconds:.1f} |"
        )
    worst = max(r.pct(0.95) for r in results)
    lines += [
        "",
        f"Target: p95 <= 1,000 ms. Worst p95 here: {worst:.0f} ms, {'met' if worst <= 1000 else '**not met**'}.",
    ]
    return "\n".join(lines)


def catchup_md(results: list[CatchupResult], command: str, env_line: str) -> str:
    wf = results[0].template
    lines = [
        "## Mirror catch-up",
        "",
        f"Reproduce: `{command}`. Machine: {env_line}. {ONE_RUN}",
        "",
        "`sync_runs(instance)` (what `maestro mirror sync --all` does) over runs nobody mirrored. One real run of "
        f"{wf} with `MAESTRO_MIRROR_IN_RUN=false`, then copies of it as new Dagster runs: its tags with a "
        "fresh run id and execution id, status SUCCESS, and every one of its events stored again under the new "
        "run id (the rows `store_event` writes, a transaction per stretch of events). Events counted: those of "
        "the types the mirror reads (`MIRRORED_TYPES`). The sync creates each execution and its node states, "
        "then projects the run. Checked: every copy became a completed execution (sampled), the sync read "
        "exactly the copies' events, and `mirror verify` finds no difference on the first and the last. "
        "The sync works in batches of runs (`mirror/batch.py`): a batch's events are read with one query "
        "(PostgreSQL) or one per run (SQLite's database file per run) and decoded by `mirror/decode.py`, in a "
        "thread, while the previous batch is written in one transaction; an execution the sync creates is "
        "inserted once with its final rows (`mirror/fresh.py`); Python's garbage collector runs every 50,000 "
        "allocations instead of 700 meanwhile. *reading Dagster s*: time spent in "
        "`read_events_many` (the query and decoding), summed over the reading thread, so it overlaps *sync s*.",
        "",
        "| backend | runs | mirrored events / run | Dagster events / run | mirrored events | rows inserted "
        "| sync s | **events/s** | CPU s | events / CPU s | reading Dagster s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.runs} | {r.events_per_run} | {r.stored_per_run} | {r.mirrored_events:,} | "
            f"{r.rows:,} | {r.seconds:.2f} | **{r.rate:,.0f}** | {r.cpu:.2f} | {r.mirrored_events / r.cpu:,.0f} | "
            f"{r.read_seconds:.2f} ({r.read_seconds / r.seconds:.0%}) |"
        )
    worst = min(r.rate for r in results)
    lines += [
        "",
        f"Target: >= 5,000 events/s. Lowest here: {worst:,.0f} events/s, {'met' if worst >= 5000 else '**not met**'}."
        " 1-minute load average before/after the sync: "
        + ", ".join(f"{r.backend} {r.load[0]:.1f}/{r.load[1]:.1f}" for r in results)
        + ".",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 repetition per variant, 5,000 catch-up events")
    parser.add_argument("--write", action="store_true", help="write the sections into docs/benchmarks.md")
    parser.add_argument("--backend", choices=BACKENDS, action="append", help="only this backend (repeatable)")
    parser.add_argument("--only", choices=PARTS, action="append", help="only this part (repeatable)")
    parser.add_argument("--reps", type=int, help="repetitions of each variant (default 9; --quick 1)")
    parser.add_argument("--events", type=int, help="catch-up events (default 50,000; --quick 5,000)")
    parser.add_argument("--nodes", type=int, default=100, help="nodes per workflow (for development only)")
    args = parser.parse_args()
    reps = args.reps or (1 if args.quick else 9)
    target = args.events or (5_000 if args.quick else 50_000)
    backends = args.backend or list(BACKENDS)
    parts = args.only or list(PARTS)

    pg = PgAdmin() if "postgresql" in backends else None
    env_line = machine(pg)
    overhead: list[OverheadResult] = []
    lag: list[LagResult] = []
    catchup: list[CatchupResult] = []
    try:
        for backend in backends:
            if "overhead" in parts:
                with bench_env(backend, args.nodes, pg) as env:
                    overhead += bench_overhead(env, reps)
            if "lag" in parts:
                with bench_env(backend, args.nodes, pg) as env:
                    lag.append(bench_lag(env))
                    progress(f"  lag {backend}: p95 {lag[-1].pct(0.95):.0f} ms")
            if "catchup" in parts:
                with bench_env(backend, args.nodes, pg) as env:
                    catchup.append(bench_catchup(env, target))
                    progress(f"  catch-up {backend}: {catchup[-1].rate:,.0f} events/s")
    finally:
        if pg is not None:
            pg.engine.dispose()

    flags = [f for f, on in (("--quick", args.quick), ("--write", True)) if on]
    command = " ".join([".venv/bin/python bench/bench_mirror.py", *flags])
    sections = {}
    if overhead:
        sections["Mirror overhead"] = overhead_md(overhead, reps, args.nodes, command, env_line)
    if lag:
        sections["Mirror lag"] = lag_md(lag, command, env_line)
    if catchup:
        sections["Mirror catch-up"] = catchup_md(catchup, command, env_line)
    for body in sections.values():
        print(body + "\n")
    if args.write:
        write_sections(sections)
        print(f"wrote {', '.join(sections)} into {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
