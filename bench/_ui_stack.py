"""For ``bench/bench_ui.py``: the definitions it stores, a temporary SQLite Maestro home holding them, ``maestro api``
as a subprocess on a free port (stopped by its pid), and the script the browser runs before the page's own.

The home is made as a user makes one: ``maestro db upgrade`` then ``maestro defs sync`` of a temporary
``MAESTRO_DEFS_DIR``, in a clean environment (no ``MAESTRO_*``, ``POSTGRES_*`` or ``DAGSTER_*`` variables of the
caller), ``MAESTRO_API_OPEN=true`` (no sign-in) and ``MAESTRO_DAGSTER_URL`` a closed port (no Dagster webserver:
the pages measured read only Maestro's tables).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
DROPPED_PREFIXES = ("MAESTRO_", "POSTGRES_", "DAGSTER_", "USE_SQLITE", "SQLITE_PATH")
GRAPH_ID, FANOUT_ID = "bench_graph_500", "bench_fanout_100"
LISTED = 50  # workflows stored in all (the list page shows every one)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graph_500(layers: int = 20, width: int = 25, seed: int = 16) -> dict[str, Any]:
    """A realistic 500-node DAG: 20 layers of 25 no-op nodes; each node of a layer is fed by 1 to 3 nodes of the
    layer before (so nodes fan out to about 2 and fan in from 1 to 3), now and then also by a node two layers up;
    some nodes carry a condition or a retry policy, as real definitions do. Deterministic (seeded)."""
    rng = random.Random(seed)
    grid = [[f"l{k:02d}_n{j:02d}" for j in range(width)] for k in range(layers)]
    nodes: dict[str, Any] = {}
    edges: list[dict[str, str]] = []
    for k, layer in enumerate(grid):
        for j, node in enumerate(layer):
            spec: dict[str, Any] = {"executor": "noop", "name": f"step {k}.{j}"}
            if k and rng.random() < 0.1:
                spec["retry_policy"] = {"max_attempts": 3}
            nodes[node] = spec
            if not k:
                continue
            sources = {grid[k - 1][(j + d) % width] for d in rng.sample(range(-1, 2), rng.randint(1, 3))}
            if k > 1 and rng.random() < 0.15:
                sources.add(grid[k - 2][rng.randrange(width)])
            edges += [{"source": s, "target": node} for s in sorted(sources)]
    return {"id": GRAPH_ID, "name": "Bench: 500 nodes", "workflow_type": "dag", "nodes": nodes, "edges": edges}


def fanout_100() -> dict[str, Any]:
    """start -> 100 parallel no-op nodes -> end (102 nodes)."""
    middle = [f"m{i:03d}" for i in range(100)]
    nodes = {node: {"executor": "noop"} for node in ("start", *middle, "end")}
    edges = [{"source": "start", "target": m} for m in middle] + [{"source": m, "target": "end"} for m in middle]
    return {"id": FANOUT_ID, "name": "Bench: fan-out 100", "workflow_type": "parallel", "nodes": nodes, "edges": edges}


def small(i: int) -> dict[str, Any]:
    """An ordinary workflow of the list: a chain or a fan-out of 3 to 30 no-op nodes."""
    n = 3 + (i * 7) % 28
    ids = [f"step_{j:02d}" for j in range(n)]
    if i % 2:
        edges = [{"source": a, "target": b} for a, b in itertools.pairwise(ids)]
    else:
        edges = [{"source": ids[0], "target": b} for b in ids[1:]]
    return {"id": f"bench_wf_{i:02d}", "name": f"Bench workflow {i}", "nodes": {j: {"executor": "noop"} for j in ids},
            "edges": edges}  # fmt: skip


def definitions() -> list[dict[str, Any]]:
    return [small(i) for i in range(LISTED - 2)] + [graph_500(), fanout_100()]


class Home:
    """A temporary Maestro home (SQLite) holding ``definitions()``, and ``maestro api`` serving it."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.db_path = work / "home" / "maestro.db"
        (work / "defs").mkdir(parents=True)
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED_PREFIXES)}
        self.env.update(
            MAESTRO_HOME=str(work / "home"),
            MAESTRO_DEFS_DIR=str(work / "defs"),
            MAESTRO_DATABASE_URL=f"sqlite:///{self.db_path}",
            DAGSTER_HOME=str(work / "home" / "dagster"),
            MAESTRO_API_OPEN="true",
            MAESTRO_DAGSTER_URL=f"http://127.0.0.1:{free_port()}",  # nothing listens there
            MAESTRO_SYNC_DEFS_ON_LOAD="false",
            DAGSTER_DISABLE_TELEMETRY="yes",
            PYTHONUNBUFFERED="1",
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = work / "api.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def maestro(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([PYTHON, "-m", "maestro_dagster", *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip
        if done.returncode != 0:
            output = (done.stdout + done.stderr)[-2000:]
            raise SystemExit(f"maestro {' '.join(args)} exited {done.returncode}: {output}")
        return done

    def prepare(self) -> int:
        """``db upgrade`` and ``defs sync`` of the definitions; returns how many workflows the API lists."""
        for raw in definitions():
            (self.work / "defs" / f"{raw['id']}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        self.maestro("db", "upgrade")
        self.maestro("defs", "sync")
        return len(definitions())

    def start_api(self, timeout: float = 180) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([PYTHON, "-m", "maestro_dagster", "api", "--port", str(self.port)], cwd=ROOT,
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"maestro api exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/api/me", timeout=5).status_code == 200:
                    listed = httpx.get(f"{self.url}/api/workflows?limit=1000", timeout=30).json()
                    if len(listed) != len(definitions()):
                        raise SystemExit(f"the API lists {len(listed)} workflows, {len(definitions())} were synced")
                    return
            time.sleep(0.3)
        raise SystemExit(f"maestro api did not answer /api/me within {timeout:.0f} s: {self.log.read_text()[-2000:]}")

    def stop_api(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


#: Runs in every document before the page's scripts (``add_init_script``; ``CONFIG`` is replaced by a JSON object):
#: long tasks (buffered), when the measured condition first holds (``performance.now()``, ms from the navigation's
#: start), each WebSocket's opening and its event ids as they arrive, each change of the live event count.
INIT_SCRIPT = """
(() => {
  if (!location.pathname.startsWith('/ui')) return;
  const want = CONFIG;
  const b = window.__bench = {timeOrigin: performance.timeOrigin, longtasks: [], marks: {}, sockets: [], counts: []};
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) b.longtasks.push([e.startTime, e.duration]);
    }).observe({type: 'longtask', buffered: true});
  } catch (e) { b.longtaskError = String(e); }
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      const sock = {opened: null, closed: null, events: []};
      b.sockets.push(sock);
      this.addEventListener('open', () => { sock.opened = performance.now(); });
      this.addEventListener('close', () => { sock.closed = performance.now(); });
      this.addEventListener('message', (m) => {
        try { const e = JSON.parse(m.data); if (typeof e.id === 'number') sock.events.push([e.id, performance.now()]); }
        catch (_) {}
      });
    }
  };
  const mark = (name) => { if (!(name in b.marks)) b.marks[name] = performance.now(); };
  const check = () => {
    if (want.rows !== undefined
        && document.querySelectorAll('table[data-testid="workflows"] tbody tr').length >= want.rows) mark('ready');
    if (want.nodes !== undefined) {
      const flow = document.querySelectorAll('.react-flow__node');
      if (document.querySelectorAll('.react-flow__node [data-testid^="node-"]').length >= want.nodes) mark('dom');
      if (flow.length >= want.nodes && document.querySelectorAll('.react-flow__edge').length >= want.edges
          && !Array.from(flow).some((n) => n.style.visibility === 'hidden')) mark('ready');
    }
    if (want.events) {
      const shown = document.querySelector('[data-testid="event-count"]');
      const n = shown ? Number(shown.textContent) : null;
      if (n !== null && (b.counts.length === 0 || b.counts[b.counts.length - 1][1] !== n)) {
        b.counts.push([performance.now(), n]);
      }
    }
  };
  new MutationObserver(check).observe(document, {subtree: true, childList: true, characterData: true,
                                                 attributes: true, attributeFilter: ['style']});
})();
"""


def init_script(**config: Any) -> str:
    return INIT_SCRIPT.replace("CONFIG", json.dumps(config))
