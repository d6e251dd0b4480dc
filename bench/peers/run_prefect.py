"""One measurement of Prefect 3 for bench/bench_peers.py, run by bench/.peers/prefect's Python in a fresh process.

    bench/.peers/prefect/bin/python bench/peers/run_prefect.py VARIANT SHAPE

A flow whose tasks are the shape's nodes, each calling ``shapes.node`` on its upstream results. VARIANT:
``submit`` (``task.submit`` on the flow's default task runner, each task given its upstream futures),
``threadpool`` (the same on ``ThreadPoolTaskRunner(max_workers=<cores>)``) or ``call`` (plain calls of the tasks
in topological order, in the flow's thread). PREFECT_HOME is a directory in BENCH_TMP and PREFECT_API_URL unset, so
Prefect starts its ephemeral server (a uvicorn subprocess) on a SQLite file there. The flow runs once as a warm-up
(the server started, the database created), then again, timed; both are checked (flow state completed, every
node's result returned). Prints one JSON line: the timed run's wall, the warm-up's, the node count.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from shapes import Shape, node, shape  # noqa: E402

VARIANTS = ("submit", "threadpool", "call")


def build(s: Shape, variant: str) -> Any:
    from prefect import flow, task
    from prefect.task_runners import ThreadPoolTaskRunner

    node_task = task(node, name="node", persist_result=False)
    options: dict[str, Any] = {"name": s.name, "persist_result": False, "log_prints": False}
    if variant == "threadpool":
        options["task_runner"] = ThreadPoolTaskRunner(max_workers=os.cpu_count() or 2)

    @flow(**options)
    def run_shape() -> int:
        done: dict[str, Any] = {}
        for node_id in s.order:
            ups = [done[up] for up in s.upstream[node_id]]
            if variant == "call":
                done[node_id] = node_task.with_options(task_run_name=node_id)(*ups)
            else:
                done[node_id] = node_task.with_options(task_run_name=node_id).submit(*ups)
        results = [f if variant == "call" else f.result() for f in done.values()]
        assert all(r == {"status": "completed"} for r in results), "a task returned something else"
        return len(results)

    return run_shape


def main(variant: str, shape_name: str) -> dict[str, Any]:
    if variant not in VARIANTS:
        raise SystemExit(f"unknown variant {variant!r}: use one of {', '.join(VARIANTS)}")
    s = shape(shape_name)
    tmp = Path(os.environ["BENCH_TMP"]) / "prefect"
    for name in list(os.environ):
        if name.startswith("PREFECT_"):
            del os.environ[name]
    os.environ.update(
        PREFECT_HOME=str(tmp),
        PREFECT_LOGGING_LEVEL="WARNING",  # the console at WARNING, as the product's runs are measured
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="true",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300",  # its default 20 s is too short on a loaded machine
        DO_NOT_TRACK="1",
    )
    run_shape = build(s, variant)
    walls = []
    for _ in range(2):
        started = time.perf_counter()
        state = run_shape(return_state=True)
        walls.append(time.perf_counter() - started)
        assert state.is_completed(), f"flow run of {s.name} ended {state.type}"
        assert state.result() == s.nodes, (state.result(), s.nodes)
    return {"wall": walls[1], "warmup": walls[0], "nodes": s.nodes}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
