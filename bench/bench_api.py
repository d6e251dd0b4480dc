"""Benchmarks of the REST API (``maestro api``, uvicorn) against PostgreSQL.

    .venv/bin/python bench/bench_api.py [--write] [--rate 200] [--seconds 10] [--launches 7] [--spaced 3] [--pause 75]

1. Read latency: ``GET /api/executions/{id}`` of a completed 6-node execution (outputs, an artifact, one run),
   requested at a fixed rate by an open-loop client (asyncio streams, keep-alive): request *i* is sent at t0 + i/rate
   whatever the answers before it did, so a slow answer delays no later request (up to 64 connections).
   Latency is from the scheduled send time to the end of the answer (a late send counts against the server).
   Bounded: exactly rate * seconds requests, each with a 10 s timeout, after 3 s of the same load not counted
   (the server's pools grow then) and once the machine is quiet (no other process busy). Against one uvicorn worker
   (``maestro api``'s default) and ``--workers 2``; the CPU one answer costs the 1-worker process is measured.
2. Launch latency: ``POST /api/workflows/{id}/execute`` of a one-node workflow until Dagster's run is
   ``STARTED`` (the ``RUN_START`` event, i.e. the run worker process is up and executing), with the daemon
   warm (a run already went through it); each launch waits for the previous run to end. Broken down with the
   run's own events: answered / ``RUN_ENQUEUED`` -> ``RUN_STARTING`` (the daemon dequeued it) -> ``RUN_START``.
   Each launch's ``maestro/launch`` tag says whether a waiting (warm) run worker took it.
3. Spaced launches: the same launch after a pause of at least ``--pause`` seconds (default 75) and until the
   daemon has replaced its code server (``dagster-daemon`` starts a new one every 60 s, checked every 5 s, and moves
   its workspace to it once loaded; read from its process tree: a new one runs and the old one exited), as an
   operator launches from the UI now and then: the warm/cold tag each launch got, and the same breakdown.

The stack is real: a temporary PostgreSQL database on ``MAESTRO_TEST_POSTGRES_URL`` (default the local
server as user postgres; Maestro's tables and Dagster's storage), ``dagster-webserver``, ``dagster-daemon``
and ``python -m maestro_dagster api`` (twice: 1 and 2 workers), all on free loopback ports, stopped by pid
and dropped afterwards.
``--write`` replaces the "## API" section of docs/benchmarks.md and keeps every other section.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _benchdoc import DOC, write_sections

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

import httpx  # noqa: E402
import yaml  # noqa: E402
from dagster import DagsterEventType, DagsterRunStatus  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from maestro_dagster.instance import PG_URL_ENV, get_instance, instance_config_source  # noqa: E402
from maestro_dagster.settings import get_settings, normalise_url  # noqa: E402

SECTION = "API"
COMMAND = ".venv/bin/python bench/bench_api.py --write"
BIN = Path(sys.executable).parent
DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
TOKEN = "bench-admin-token"
EX = "maestro_examples.nodes"
WARMUP_SECONDS = 3.0  # load at the same rate before each measured window
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
TAG_LAUNCH = "maestro/launch"  # MaestroRunLauncher's tag: "warm" or "cold"
TIMES = ("answered", "queued", "worker", "total")  # the seconds of a launch's breakdown


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if value := predicate():
                return value
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


def six_nodes(work: Path) -> dict[str, Any]:
    """1 -> 4 -> 1: outputs on every node, an artifact on the last."""
    middle = [f"part{i}" for i in range(1, 5)]
    nodes: dict[str, Any] = {"start": {"executor": "noop"}}
    nodes |= {m: {"executor": f"{EX}:echo", "config": {"output": {"part": m, "rows": 100}}} for m in middle}
    nodes["report"] = {
        "executor": f"{EX}:write_file",
        "config": {"path": str(work / "report.txt"), "content": "x" * 2048},
    }
    edges = [{"source": "start", "target": m} for m in middle] + [{"source": m, "target": "report"} for m in middle]
    return {"id": "bench_six", "workflow_type": "parallel", "nodes": nodes, "edges": edges}


class Stack:
    """PostgreSQL database + webserver + daemon + one API process, for this benchmark only."""

    def __init__(self) -> None:
        self.work = Path(tempfile.mkdtemp(prefix="maestro_bench_api_"))
        admin_url = normalise_url(
            os.environ.get("MAESTRO_TEST_POSTGRES_URL", DEFAULT_PG_URL), "MAESTRO_TEST_POSTGRES_URL"
        )
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.db_name = f"maestro_bench_api_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.db_name}"'))
            self.pg_version = str(conn.execute(text("SHOW server_version")).scalar()).split()[0]
        url = admin_url.set(database=self.db_name).render_as_string(hide_password=False)
        self.web_port, self.api_port, self.api2_port = free_port(), free_port(), free_port()
        for name in [n for n in os.environ if n.startswith(("MAESTRO_", "POSTGRES_", "DAGSTER_"))]:
            if name != "MAESTRO_TEST_POSTGRES_URL":
                del os.environ[name]
        (self.work / "defs").mkdir()
        os.environ.update(
            MAESTRO_HOME=str(self.work / "home"),
            MAESTRO_DATABASE_URL=url,
            MAESTRO_DEFS_DIR=str(self.work / "defs"),
            DAGSTER_HOME=str(self.work / "home" / "dagster"),
            MAESTRO_DAGSTER_URL=f"http://127.0.0.1:{self.web_port}",
            MAESTRO_API_TOKENS=json.dumps({TOKEN: {"role": "admin", "name": "bench"}}),
            MAESTRO_EXECUTOR_ALLOWLIST="maestro_examples",  # the example executors are opt-in (docs/security.md)
            MAESTRO_ARTIFACT_ROOTS=str(self.work),  # where bench_six's write_file node writes
            PYTHONUNBUFFERED="1",
        )
        os.environ[PG_URL_ENV] = url
        get_settings.cache_clear()
        self.procs: list[tuple[subprocess.Popen, Any]] = []
        self.named: dict[str, subprocess.Popen] = {}
        self.instance: Any = None

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((proc, log))
        self.named[name] = proc
        return proc

    def up(self) -> None:
        subprocess.run([sys.executable, "-m", "maestro_dagster", "db", "upgrade"], check=True, capture_output=True)
        self.instance = get_instance(get_settings())  # writes DAGSTER_HOME/dagster.yaml, creates Dagster's tables
        ws = str(ROOT / "workspace.yaml")
        self.start("webserver", str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(self.web_port), "-w", ws)
        self.start("daemon", str(BIN / "dagster-daemon"), "run", "-w", ws)
        api = [sys.executable, "-m", "maestro_dagster", "api", "--port"]
        self.start("api", *api, str(self.api_port))
        self.start("api2", *api, str(self.api2_port), "--workers", "2")
        wait_for(lambda: httpx.get(f"{self.api}/health", timeout=5).status_code == 200, 180, "API + webserver healthy")
        wait_for(lambda: httpx.get(f"{self.api2}/health/ready", timeout=5).status_code == 200, 60, "2-worker API")

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def api2(self) -> str:
        return f"http://127.0.0.1:{self.api2_port}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.api, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)

    def run_record(self, run_id: str) -> Any:
        return self.instance.get_run_record_by_id(run_id)

    def close(self) -> None:
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc, log in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            log.close()
        if self.instance is not None:
            self.instance.dispose()
        from maestro_dagster.db.session import dispose_engines

        dispose_engines()
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
        self.admin.dispose()
        shutil.rmtree(self.work, ignore_errors=True)


def execute_and_wait(stack: Stack, workflow_id: str, timeout: float = 180) -> dict[str, Any]:
    with stack.client() as c:
        started = c.post(f"/api/workflows/{workflow_id}/execute", json={"initial_context": {"bench": True}})
        started.raise_for_status()
        execution_id = started.json()["execution_id"]

        def done() -> dict[str, Any] | None:
            body = c.get(f"/api/executions/{execution_id}").json()
            if body["status"] in ("failed", "cancelled", "paused"):
                raise SystemExit(f"{execution_id} ended {body['status']}: {body.get('error_message')}")
            return body if body["status"] == "completed" else None

        return wait_for(done, timeout, f"{execution_id} to complete", interval=0.5)


# ---- 1. read latency -------------------------------------------------------------------------------------


def _proc_cpu(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds of it and its reaped children) of a live process, or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # utime + stime, and cutime + cstime: the children it has reaped (a run worker that exited counts in its
    # daemon's figure; while alive it counts as the daemon's descendant).
    return int(fields[1]), sum(int(fields[i]) for i in (11, 12, 13, 14)) / os.sysconf("SC_CLK_TCK")


def machine_cpu(steal: bool = False) -> float:
    """CPU seconds all processes of the machine have used (user, nice, system, irq, softirq), or with
    ``steal`` the time the hypervisor gave this virtual machine's CPUs to others (its ``steal`` column)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return sum(int(fields[i]) for i in ((7,) if steal else (0, 1, 2, 5, 6))) / os.sysconf("SC_CLK_TCK")


def stack_cpu(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by each part of the stack: its processes and all their children (code servers,
    run workers, step processes), by the name the stack started them with."""
    table = {int(p.name): c for p in Path("/proc").iterdir() if p.name.isdigit() and (c := _proc_cpu(int(p.name)))}
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    used: dict[str, float] = {}
    for name, proc in stack.named.items():
        todo, total = [proc.pid], 0.0
        while todo:
            pid = todo.pop()
            total += table[pid][1] if pid in table else 0.0
            todo += children.get(pid, [])
        used[name] = total
    return used


def wait_quiet(stack: Stack, cores: float = 0.15, hold: float = 3.0, timeout: float = 180.0) -> float:
    """Wait until the machine uses less than ``cores`` CPUs for ``hold`` seconds in a row (the warm-up run's
    processes have exited, the code server started by the new workflows is up, the launcher's standby worker
    has imported everything); returns the seconds waited. Gives up (and goes on) after ``timeout``."""
    started = time.monotonic()
    quiet_since, last = None, machine_cpu()
    while time.monotonic() - started < timeout:
        time.sleep(0.5)
        now = machine_cpu()
        busy, last = (now - last) / 0.5, now
        if busy >= cores:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= hold:
            break
    return time.monotonic() - started


def measured_reads(stack: Stack, url: str, rate: float, seconds: float) -> dict[str, Any]:
    """``paced_gets`` with the CPU each part of the stack, and the whole machine, used meanwhile."""
    asyncio.run(paced_gets(url, rate, WARMUP_SECONDS))  # the server's thread and connection pools grow: not counted
    before, machine_before, client_before = stack_cpu(stack), machine_cpu(), time.process_time()
    steal_before = machine_cpu(steal=True)
    read = asyncio.run(paced_gets(url, rate, seconds))
    after, machine_after, client = stack_cpu(stack), machine_cpu(), time.process_time() - client_before
    cpu = {name: after[name] - before[name] for name in before}
    cpu["client"] = client
    cpu["rest of the machine"] = machine_after - machine_before - sum(cpu.values())
    cpu["stolen"] = machine_cpu(steal=True) - steal_before
    read["cpu"] = cpu
    return read


def cpu_line(read: dict[str, Any]) -> str:
    """CPU seconds each part used during a read window (the window is ``elapsed`` seconds on 2 CPUs)."""
    parts = ", ".join(f"{name} {seconds:.2f}" for name, seconds in read["cpu"].items())
    return f"CPU s during the {read['elapsed']:.1f} s window: {parts}"


class Connection:
    """One keep-alive HTTP/1.1 connection that sends a fixed GET and reads the answer by its Content-Length.

    The load generator shares the machine's CPUs with the server it measures: a general client (httpx) spends
    about as much CPU per request as the server does, which would be measured as server latency. This one spends
    a few tens of microseconds."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
        self.reader, self.writer, self.request = reader, writer, request

    @classmethod
    async def open(cls, url: str, headers: dict[str, str]) -> Connection:
        parts = httpx.URL(url)
        reader, writer = await asyncio.open_connection(parts.host, parts.port)
        lines = [f"GET {parts.raw_path.decode()} HTTP/1.1", f"Host: {parts.host}:{parts.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return cls(reader, writer, ("\r\n".join(lines) + "\r\n\r\n").encode())

    async def get(self) -> tuple[int, bytes]:
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        if length is None:
            raise ValueError(f"answer without Content-Length: {head[:200]!r}")
        return int(head[9:12]), await self.reader.readexactly(int(length.group(1)))

    def close(self) -> None:
        self.writer.close()


async def paced_gets(url: str, rate: float, seconds: float, connections: int = 64) -> dict[str, Any]:
    """Exactly ``rate * seconds`` GETs, request *i* due at t0 + i/rate, over at most ``connections`` keep-alive
    connections (handed out through a queue; a request waits for a free one, and that wait counts)."""
    total = int(rate * seconds)
    latencies: list[float] = []
    service: list[float] = []
    errors: list[str] = []
    sizes: list[int] = []
    headers = {"Authorization": f"Bearer {TOKEN}"}
    pool = [await Connection.open(url, headers) for _ in range(connections)]
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for conn in pool:
        await conn.get()  # warm the connection and the server up, not counted
        idle.put_nowait(conn)
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.2

    async def one(scheduled: float) -> None:
        conn = await idle.get()
        sent = loop.time()
        try:
            code, body = await asyncio.wait_for(conn.get(), timeout=10)
            done = loop.time()
            idle.put_nowait(conn)
        except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError) as exc:
            errors.append(type(exc).__name__)
            conn.close()  # its stream may hold part of an answer: replace it
            idle.put_nowait(await Connection.open(url, headers))
            return
        if code != 200:
            errors.append(str(code))
            return
        latencies.append(done - scheduled)
        service.append(done - sent)
        sizes.append(len(body))

    async def produce() -> None:
        """Each request is started at its time (not all created up front, which keeps the loop busy at t0)."""
        started = []
        for i in range(total):
            scheduled = t0 + i / rate
            if scheduled > loop.time():
                await asyncio.sleep(scheduled - loop.time())
            started.append(asyncio.create_task(one(scheduled)))
        await asyncio.gather(*started)

    # The client must not pause: this process holds Dagster's modules and instance (hundreds of thousands of
    # objects), and a full garbage collection in it, set off by creating the requests, stalls every answer in
    # flight for tens of milliseconds, which would count against the server.
    gc.collect()
    gc.disable()
    try:
        await asyncio.wait_for(produce(), timeout=seconds + 30)
    finally:
        elapsed = loop.time() - t0
        gc.enable()
        while not idle.empty():
            idle.get_nowait().close()
    return {"total": total, "latencies": latencies, "service": service, "errors": errors, "sizes": sizes,
            "elapsed": elapsed}  # fmt: skip


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


# ---- 2. launch latency -----------------------------------------------------------------------------------


def one_launch(stack: Stack, workflow_id: str) -> dict[str, Any]:
    with stack.client() as c:
        t_post = time.time()
        response = c.post(f"/api/workflows/{workflow_id}/execute", json={})
        t_answer = time.time()
    response.raise_for_status()
    run_id = response.json()["run_id"]
    record = wait_for(
        lambda: (
            (r := stack.run_record(run_id)) and r.dagster_run.status != DagsterRunStatus.QUEUED and r.start_time and r
        ),
        60,
        f"run {run_id} to start",
        interval=0.05,
    )
    stamps: dict[str, float] = {}
    for entry in stack.instance.all_logs(run_id):
        if entry.dagster_event is not None and entry.dagster_event.event_type_value not in stamps:
            stamps[entry.dagster_event.event_type_value] = entry.timestamp
    wait_for(lambda: stack.run_record(run_id).dagster_run.status in FINISHED, 120, f"run {run_id} to end", 0.2)
    started = stamps.get(DagsterEventType.RUN_START.value, record.start_time)
    return {
        "answered": t_answer - t_post,
        "queued": stamps[DagsterEventType.RUN_STARTING.value] - stamps[DagsterEventType.RUN_ENQUEUED.value],
        "worker": started - stamps[DagsterEventType.RUN_STARTING.value],
        "total": started - t_post,
        "launch": stack.run_record(run_id).dagster_run.tags.get(TAG_LAUNCH, "none"),
    }


def daemon_code_servers(stack: Stack) -> set[int]:
    """Pids of the code servers (``dagster api grpc``) the daemon runs now: children of its process tree."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_cpu(int(entry.name))) is not None:
            parents[int(entry.name)] = stat[0]
    tree, todo = set(), [stack.named["daemon"].pid]
    while todo:
        pid = todo.pop()
        children = [p for p, ppid in parents.items() if ppid == pid]
        tree.update(children)
        todo += children
    found = set()
    for pid in tree:
        with contextlib.suppress(OSError):
            if b"api\0grpc" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.add(pid)
    return found


def paused(stack: Stack, before: set[int], started: float, pause: float) -> bool:
    """``pause`` seconds have passed since ``started`` and the daemon's code servers ``before`` were all replaced."""
    now = daemon_code_servers(stack)
    return time.monotonic() - started >= pause and bool(now - before) and not now & before


def spaced_launches(stack: Stack, workflow_id: str, count: int, pause: float) -> list[dict[str, Any]]:
    """``count`` launches, each after a pause of at least ``pause`` seconds since the previous run ended and until
    the daemon has replaced its code server meanwhile (a new one runs, the old ones exited: its workspace has moved
    to the new one, a new ``server_id``), bounded by ``pause`` + 300 s."""
    results = []
    for i in range(1, count + 1):
        before, started = daemon_code_servers(stack), time.monotonic()
        print(f"spaced launch {i}/{count}: pausing {pause:.0f} s or more ...", flush=True)

        wait_for(lambda b=before, t=started: paused(stack, b, t, pause), pause + 300,
                 "the pause and a replacement of the daemon's code server", interval=1.0)  # fmt: skip
        result = one_launch(stack, workflow_id)
        result["pause"] = time.monotonic() - started
        results.append(result)
        print(f"spaced launch {i}: {result['launch']}, POST -> STARTED {result['total']:.2f} s "
              f"after a pause of {result['pause']:.0f} s", flush=True)  # fmt: skip
    return results


# ---- report ----------------------------------------------------------------------------------------------


def instance_settings(key: str) -> dict[str, Any]:
    config = yaml.safe_load(instance_config_source(get_settings()).read_text())[key]
    return {"class": config["class"], **config.get("config", {})}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def read_row(label: str, read: dict[str, Any]) -> str:
    lat = read["latencies"]
    return (
        f"| {label} | {read['total']:,} | {len(lat):,} | {len(read['errors'])} | {len(lat) / read['elapsed']:,.1f}/s "
        f"| {ms(pct(lat, 50))} | {ms(pct(lat, 95))} | {ms(pct(lat, 99))} | {ms(max(lat))} "
        f"| {ms(pct(read['service'], 50))} / {ms(pct(read['service'], 95))} |"
    )


def launch_tags(launches: list[dict[str, Any]]) -> str:
    warm = sum(1 for x in launches if x["launch"] == "warm")
    return f"{warm} of {len(launches)} warm"


def spaced_section(spaced: list[dict[str, Any]], pause: float) -> list[str]:
    """The "(3) spaced launches" paragraphs (none when ``--spaced 0``)."""
    if not spaced:
        return []
    med = {k: statistics.median(x[k] for x in spaced) for k in TIMES}
    rows = "\n".join(
        f"| {i} | {x['pause']:.0f} s | {x['launch']} | {ms(x['queued'])} | {ms(x['worker'])} | {ms(x['total'])} |"
        for i, x in enumerate(spaced, 1)
    )
    all_warm = all(x["launch"] == "warm" for x in spaced)
    return [
        "### (3) The same launch after a pause past the daemon's code-server refresh",
        f"{len(spaced)} launches, each after a pause (from the previous run's end) of at least {pause:.0f} s and "
        "until `dagster-daemon` had replaced its code server (every 60 s, checked every 5 s, it starts a new code "
        "server, with a new server id, whether or not the code changed, and its workspace moves to it once it has "
        "loaded; read from the daemon's process tree: the new one runs and the old one has exited), as when an "
        "operator launches from the UI now and then. *Worker* is the run's `maestro/launch` tag.",
        "| launch | pause | worker | queued (dequeue wait) | worker start | POST -> STARTED |\n"
        "|---:|---:|---|---:|---:|---:|\n" + rows + "\n"
        f"| **median** | | | **{ms(med['queued'])}** | **{ms(med['worker'])}** | **{ms(med['total'])}** |",
        f"- Every spaced launch warm: {'met' if all_warm else '**not met**'} ({launch_tags(spaced)}). The waiting "
        "worker is kept across code-server refreshes and let go only when a file of its code changed on disk "
        "(docs/operations.md); before, it was tied to the code server's id, so a launch after such a pause "
        "started a cold worker.",
    ]


def render(reads: dict[int, dict[str, Any]], launches: list[dict[str, Any]], stack: Stack, load: str,
           rate: float, cpu_ms: float, quiet: float, spaced: list[dict[str, Any]], pause: float) -> str:  # fmt: skip
    p95 = pct(reads[1]["latencies"], 95)
    med = {k: statistics.median(x[k] for x in launches) for k in TIMES}
    coord, launcher = instance_settings("run_coordinator"), instance_settings("run_launcher")
    machine = (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}, "
        f"Dagster {__import__('dagster').__version__}, PostgreSQL {stack.pg_version}"
    )
    verdict = "met" if p95 <= 0.020 else "**not met**"
    rows = "\n".join(
        f"| {i} | {ms(x['answered'])} | {ms(x['queued'])} | {ms(x['worker'])} | {ms(x['total'])} | {x['launch']} |"
        for i, x in enumerate(launches, 1)
    )
    size = statistics.median(reads[1]["sizes"])
    table = "\n".join(read_row(f"{w} worker{'s' if w > 1 else ''}", r) for w, r in sorted(reads.items()))
    two = f" With `--workers 2` the same load gives p95 {ms(pct(reads[2]['latencies'], 95))}." if 2 in reads else ""
    names = list(reads[1]["cpu"])
    cpu_table = (
        "| during the load on | " + " | ".join(names) + " |\n|---|" + "---:|" * len(names) + "\n"
        + "\n".join(
            f"| {w} worker{'s' if w > 1 else ''} ({r['elapsed']:.1f} s) | "
            + " | ".join(f"{r['cpu'][n]:.2f}" for n in names) + " |"
            for w, r in sorted(reads.items())
        )
    )  # fmt: skip
    paragraphs = [
        "## API",
        f"Measured by `{COMMAND}` in one run on this machine ({machine}); load average {load} when it started "
        "(the machine is shared: other work ran during the measurement, and figures move between runs). The API is "
        "`python -m maestro_dagster api` (uvicorn), with PostgreSQL for Maestro's tables and Dagster's storage, "
        "`dagster-webserver` and `dagster-daemon` beside it, all on loopback.",
        f"### (1) `GET /api/executions/{{id}}` at {rate:.0f} requests/s for {reads[1]['total'] / rate:.0f} s",
        f"Open-loop paced client (plain asyncio streams, keep-alive, in the benchmark's process, up to 64 "
        "connections; a general HTTP client would spend as much CPU per request as the server): request *i* is sent "
        f"at t0 + i/{rate:.0f} s whatever the earlier answers did, and its latency counts from that scheduled "
        "time to the end of the answer, so queueing in the server shows. The execution has 6 nodes (1 -> 4 -> 1) "
        f"with outputs, one artifact and one run; the answer is {size:,.0f} bytes. The last column counts from the "
        "actual send (p50 / p95).",
        "| API | requests | answered 200 | errors | achieved | p50 | p95 | p99 | max | from actual send |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n" + table,
        f"Each measured load follows {WARMUP_SECONDS:.0f} s of the same load that is not counted: at its start the API "
        "process grows its worker-thread pool and opens database connections (requests overlap for the first "
        "time), and answers in those first seconds wait for that (up to about 100 ms). "
        "Before each load the benchmark waits until the machine is quiet (under 0.15 CPU busy for 3 s: the "
        "warm-up run's processes gone, the code server that the new workflows started up, the launcher's standby "
        f"worker done importing; {quiet:.0f} s before the first load). CPU seconds each part of the stack used "
        "during each load (a part counts its children: the webserver its code server, the daemon its sensors' "
        "code server and run workers; *rest of the machine* is PostgreSQL, the kernel and whatever else ran; "
        "*stolen* is time the hypervisor gave this virtual machine's CPUs to other guests (`steal` in "
        "`/proc/stat`), during which nothing here runs; the window offers 2 CPU-seconds per second):",
        cpu_table,
        f"- Target p95 <= 20 ms (one worker, `maestro api`'s default): {verdict} ({ms(p95)}).{two}\n"
        f"- One answer costs the API process {cpu_ms:.1f} ms of CPU (300 sequential requests), so {rate:.0f} "
        f"requests/s keep one worker about {cpu_ms * rate / 10:.0f}% busy; the client, PostgreSQL, the Dagster "
        "webserver and daemon (and a second worker) share the same 2 CPUs with it, so answers can wait for "
        "a CPU. The answer is two prebuilt SQL statements (the execution with its runs; the nodes with their "
        "artifacts), in one worker-thread hop, serialized once by pydantic (not validated again by FastAPI); it "
        "reads only the columns it shows (no context or node-input JSON). The statements run on the API's read "
        "engine: a pooled connection in autocommit for good, tested with `SELECT 1` only after 10 s unused, so "
        "the answer costs two round trips to PostgreSQL and no other call into the driver (before, SQLAlchemy's "
        "`pool_pre_ping` added a `SELECT 1` round trip at every checkout and the switch to autocommit and back "
        "two more driver calls, each a release and re-acquisition of the GIL: p95 13.6 to 48.5 ms across runs, "
        "at about the same CPU per answer, 2.3 ms). Most of the rest "
        "is the HTTP stack (uvicorn, Starlette/FastAPI routing, the role check).",
        "### (2) `POST /api/workflows/{id}/execute` to run `STARTED`, warm daemon",
        f"A one-node workflow, {len(launches)} launches one after the other (each after the previous run ended; "
        "one launch before them is not counted). Columns: the API's answer (execution row written, run submitted "
        "through the webserver's GraphQL); `RUN_ENQUEUED` to `RUN_STARTING` (waiting for the daemon's dequeue "
        "tick); `RUN_STARTING` to `RUN_START` (the run worker gets the run, loads its job and starts it); POST to "
        "`RUN_START` in total; the run's `maestro/launch` tag (warm: a waiting run worker took it).",
        "| launch | API answered | queued (dequeue wait) | worker start | POST -> STARTED | worker |\n"
        "|---:|---:|---:|---:|---:|---|\n" + rows + "\n"
        f"| **median** | **{ms(med['answered'])}** | **{ms(med['queued'])}** | **{ms(med['worker'])}** "
        f"| **{ms(med['total'])}** | {launch_tags(launches)} |",
        f"- Target median <= 2 s: {'met' if med['total'] <= 2.0 else '**not met**'} ({ms(med['total'])}). The "
        f"API's part is {ms(med['answered'])} and the queue wait {ms(med['queued'])} (the dequeue interval is 1 s). "
        "The run launcher is `MaestroRunLauncher` (docs/operations.md): the run's worker process was started ahead "
        "of time and has already imported Dagster, opened the storage and imported the code location (about 1.7 s "
        "with Dagster's `DefaultRunLauncher`, which spawns that process at launch: 2,258 ms median POST -> STARTED "
        "in the previous measurement); what remains is loading the job (its definition row, compiled) and "
        "Dagster's start of the run.\n"
        f"- Run coordinator in use (`{instance_config_source(get_settings()).name}`, the same settings as "
        f"`dagster.yaml`): `{coord['class']}` with `max_concurrent_runs: {coord.get('max_concurrent_runs')}`, "
        f"`dequeue_interval_seconds: {coord.get('dequeue_interval_seconds')}`, "
        f"`dequeue_use_threads: {str(coord.get('dequeue_use_threads')).lower()}`. Why: the queued coordinator "
        "lets the webserver (and so the API) answer as soon as the run is stored, and the daemon applies the "
        "concurrency limit and run monitoring; Dagster's default dequeue interval (5 s) would add up to 5 s "
        "(2.5 s on average) to every launch, 1 s adds at most 1 s; with `dequeue_use_threads` the daemon "
        "launches runs from worker threads, so a slow launch does not hold back the rest of the queue. Run "
        f"launcher: `{launcher['class']}` with `warm_workers: {launcher.get('warm_workers')}` (one worker waiting "
        "covers launches one after another; raise it for bursts).",
        *spaced_section(spaced, pause),
    ]
    return "\n\n".join(paragraphs) + "\n"


def api_cpu_ms(stack: Stack, path: str, n: int = 300) -> float:
    """CPU milliseconds the 1-worker API process spends per request, over ``n`` sequential requests."""
    pid = stack.named["api"].pid

    def cpu() -> float:
        stat = _proc_cpu(pid)
        assert stat is not None, "the API process exited"
        return stat[1]

    with stack.client() as c:
        before = cpu()
        for _ in range(n):
            c.get(path).raise_for_status()
        return (cpu() - before) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="update the '## API' section of docs/benchmarks.md")
    parser.add_argument("--rate", type=float, default=200.0, help="GET requests per second (default 200)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of the GET load (default 10)")
    parser.add_argument("--launches", type=int, default=7, help="execute launches to time (default 7)")
    parser.add_argument("--spaced", type=int, default=3, help="launches after a pause each (default 3; 0: none)")
    parser.add_argument(
        "--pause", type=float, default=75.0,
        help="seconds at least before each spaced launch, which also waits for the daemon's code-server refresh "
        "(default 75)",
    )  # fmt: skip
    parser.add_argument("--only", choices=("read", "launch"), help="run one part only (cannot be used with --write)")
    args = parser.parse_args()
    if args.only and args.write:
        parser.error("--write needs both parts: drop --only")
    if args.spaced < 0 or args.pause <= 0:
        parser.error("--spaced must be 0 or more and --pause more than 0 seconds")
    load = "{:.2f} / {:.2f} / {:.2f}".format(*os.getloadavg())
    stack = Stack()
    try:
        stack.up()
        with stack.client() as c:
            for raw in (six_nodes(stack.work), {"id": "bench_one", "nodes": {"only": {"executor": "noop"}}}):
                stored = c.post("/api/workflows", json=raw)
                assert stored.status_code in (200, 201), f"storing {raw['id']}: {stored.status_code} {stored.text}"
        print("warming up: one 6-node execution through the daemon ...", flush=True)
        done = execute_and_wait(stack, "bench_six")
        quiet = wait_quiet(stack)
        print(f"stack quiet after {quiet:.1f} s", flush=True)
        path = f"/api/executions/{done['execution_id']}"
        cpu_ms = api_cpu_ms(stack, path)
        reads = {}
        for workers, base in ((1, stack.api), (2, stack.api2)) if args.only != "launch" else ():
            print(f"GET {path} at {args.rate:.0f}/s for {args.seconds:.0f} s, {workers} worker(s) ...", flush=True)
            if workers > 1:
                wait_quiet(stack)
            reads[workers] = measured_reads(stack, f"{base}{path}", args.rate, args.seconds)
            print(read_row(f"{workers} worker(s)", reads[workers]), flush=True)
            print(cpu_line(reads[workers]), flush=True)
            if not reads[workers]["latencies"]:
                raise SystemExit(f"no successful GET: {reads[workers]['errors'][:5]}")
        launches = []
        for i in range(args.launches + 1 if args.only != "read" else 0):
            result = one_launch(stack, "bench_one")
            if i:  # the first launch of a new job warms its snapshot: not counted
                launches.append(result)
                print(f"launch {i}: POST -> STARTED {result['total']:.2f} s ({result['launch']})", flush=True)
        spaced = spaced_launches(stack, "bench_one", args.spaced, args.pause) if args.only != "read" else []
    except BaseException:
        for log in sorted(stack.work.glob("*.log")):
            print(f"---- {log.name} ----\n" + "\n".join(log.read_text(errors="replace").splitlines()[-25:]))
        raise
    finally:
        stack.close()
    if args.only:
        for workers, read in reads.items():
            print(read_row(f"{workers} worker(s)", read))
        for launch in [*launches, *spaced]:
            print({k: f"{v * 1000:.0f} ms" if k in TIMES else v for k, v in launch.items()})
        return
    body = render(reads, launches, stack, load, args.rate, cpu_ms, quiet, spaced, args.pause)
    print(body)
    if args.write:
        write_sections({SECTION: body})
        print(f"wrote the '## {SECTION}' section of {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
