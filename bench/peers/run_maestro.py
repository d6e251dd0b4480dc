"""One measurement of the product for bench/bench_peers.py, run by the project's Python in a fresh process.

    .venv/bin/python bench/peers/run_maestro.py setup SHAPE     # first, in its own process
    .venv/bin/python bench/peers/run_maestro.py VARIANT SHAPE   # then the measurement

VARIANT: ``mirrored`` (``run_workflow(..., in_process=True)``, ``MAESTRO_MIRROR_IN_RUN=true``), ``unmirrored`` (the
same with ``MAESTRO_MIRROR_IN_RUN=false``: the compiled job without the in-run mirror; ``run_workflow`` still makes
its one final mirror pass) or ``multiprocess`` (``run_workflow`` with the job's default executor: a process per
step, mirrored). In a temporary MAESTRO_HOME under BENCH_TMP (the Maestro SQLite file and Dagster's SQLite
storage, as bench/bench_mirror.py sets them up), ``setup`` migrates the database, stores the shape as a definition
of ``noop`` nodes and creates Dagster's storage (what ``maestro db upgrade`` and ``maestro defs sync`` do before a
``maestro run``, so the measured process does not hold Alembic). The measurement runs the workflow once as a
warm-up (the job compiled, the first-time costs paid), then again, timed; both runs are checked (execution
``completed``, every node completed). ``multiprocess`` has no warm-up: each step is a fresh process anyway, and a
second run of a process per step would double the longest measurement for little. Prints one JSON line: the timed
run's wall, the warm-up's (null without one), the node count.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(ROOT)]
os.chdir(ROOT)  # the code location is loaded from the working directory

from shapes import Shape, shape  # noqa: E402

VARIANTS = {"mirrored": (True, True), "unmirrored": (True, False), "multiprocess": (False, True)}
SCRUB_PREFIXES = ("MAESTRO_", "POSTGRES_", "DAGSTER_")
SCRUB_NAMES = ("USE_SQLITE", "SQLITE_PATH", "DB_POOL_SIZE", "DB_MAX_OVERFLOW", "DB_POOL_TIMEOUT", "DB_POOL_RECYCLE")


def definition(s: Shape) -> dict[str, Any]:
    return {
        "id": s.name.replace("-", "_"),
        "workflow_type": "linear" if s.name.startswith("linear") else "parallel",
        "nodes": {node: {"executor": "noop"} for node in s.order},
        "edges": [{"source": a, "target": b} for a, b in s.edges()],
    }


def environment(mirror: bool) -> None:
    tmp = Path(os.environ["BENCH_TMP"])
    for name in list(os.environ):
        if name.startswith(SCRUB_PREFIXES) or name in SCRUB_NAMES:
            del os.environ[name]
    (tmp / "defs").mkdir(exist_ok=True)
    os.environ.update(
        MAESTRO_HOME=str(tmp / "home"),
        MAESTRO_DEFS_DIR=str(tmp / "defs"),
        MAESTRO_SYNC_DEFS_ON_LOAD="false",
        MAESTRO_MIRROR_IN_RUN="true" if mirror else "false",
        DAGSTER_DISABLE_TELEMETRY="yes",
    )


def setup(s: Shape) -> dict[str, Any]:
    environment(True)
    from maestro_dagster.db import migrate
    from maestro_dagster.db.session import dispose_engines, get_db
    from maestro_dagster.defs_store import store_definition
    from maestro_dagster.instance import get_instance
    from maestro_dagster.settings import get_settings

    settings = get_settings()
    migrate.upgrade(settings)
    with get_db(settings) as session:
        store_definition(session, definition(s), settings, source="bench")[0].raise_if_invalid()
    get_instance(settings).dispose()  # Dagster's storage created once, as `maestro db upgrade` does
    dispose_engines()
    return {"setup": s.name}


def run(variant: str, s: Shape) -> dict[str, Any]:
    in_process, mirror = VARIANTS[variant]
    environment(mirror)
    from maestro_dagster.db.models import WorkflowExecution
    from maestro_dagster.db.session import dispose_engines, get_db
    from maestro_dagster.executions.local import run_workflow
    from maestro_dagster.instance import get_instance
    from maestro_dagster.settings import get_settings

    logging.disable(logging.WARNING)  # Dagster's console log at WARNING, as `maestro run` does
    settings = get_settings()
    instance = get_instance(settings)
    workflow_id = definition(s)["id"]
    walls = []
    for _ in range(2 if in_process else 1):
        started = time.perf_counter()
        result = run_workflow(instance, workflow_id, {}, in_process=in_process, trigger="bench", log_level="WARNING")
        walls.append(time.perf_counter() - started)
        assert result.success, f"run {result.run_id} of {s.name} failed"
        with get_db(settings) as session:
            ex = session.get(WorkflowExecution, result.execution_id)
            assert ex is not None and ex.status.value == "completed", f"{result.execution_id} not completed"
            assert (ex.completed_nodes, ex.total_nodes) == (s.nodes, s.nodes), (ex.completed_nodes, ex.total_nodes)
    instance.dispose()
    dispose_engines()
    return {"wall": walls[-1], "warmup": walls[0] if len(walls) == 2 else None, "nodes": s.nodes}


def main(variant: str, shape_name: str) -> dict[str, Any]:
    if variant != "setup" and variant not in VARIANTS:
        raise SystemExit(f"unknown variant {variant!r}: use setup, {', '.join(VARIANTS)}")
    s = shape(shape_name)
    return setup(s) if variant == "setup" else run(variant, s)


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
