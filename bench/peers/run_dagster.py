"""One measurement of plain Dagster for bench/bench_peers.py, run by the project's Python in a fresh process.

    .venv/bin/python bench/peers/run_dagster.py sqlite|memory SHAPE

A hand-written job of the shape (one op per node calling ``shapes.node`` on its upstream outputs, one
dependency per edge), run by ``execute_in_process``, console log at WARNING as the product's runs are measured.
``sqlite``: on a Dagster instance of Dagster's default SQLite storage in BENCH_TMP (runs and events stored, as the
product's are); ``memory``: on ``execute_in_process``'s own default, an ephemeral in-memory instance (nothing
stored). The job runs once as a warm-up, then again, timed; both are checked (success, every op's output). Prints
one JSON line: the timed run's wall, the warm-up's, the node count.
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


def build(s: Shape) -> Any:
    from dagster import DependencyDefinition, GraphDefinition, In, OpDefinition, Out, Output

    def make_op(node_id: str) -> OpDefinition:
        ups = s.upstream[node_id]

        # unannotated: Dagster rejects string annotations (this module's are, by its __future__ import)
        def compute(context, inputs):
            yield Output(node(*(inputs[f"in_{i}"] for i in range(len(ups)))))

        return OpDefinition(
            compute_fn=compute, name=node_id, ins={f"in_{i}": In() for i in range(len(ups))}, outs={"result": Out()}
        )

    deps = {n: {f"in_{i}": DependencyDefinition(up, "result") for i, up in enumerate(s.upstream[n])} for n in s.order}
    graph = GraphDefinition(name=s.name.replace("-", "_"), node_defs=[make_op(n) for n in s.order], dependencies=deps)
    return graph.to_job()


def main(variant: str, shape_name: str) -> dict[str, Any]:
    if variant not in ("sqlite", "memory"):
        raise SystemExit(f"unknown variant {variant!r}: use sqlite or memory")
    s = shape(shape_name)
    home = Path(os.environ["BENCH_TMP"]) / "dagster"
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["DAGSTER_DISABLE_TELEMETRY"] = "yes"
    from dagster import DagsterInstance

    job = build(s)
    config = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    walls = []
    with DagsterInstance.get() if variant == "sqlite" else DagsterInstance.ephemeral() as instance:
        for _ in range(2):
            started = time.perf_counter()
            result = job.execute_in_process(run_config=config, instance=instance)
            walls.append(time.perf_counter() - started)
            assert result.success, f"run {result.run_id} of {s.name} failed"
            assert all(result.output_for_node(n, "result") == {"status": "completed"} for n in s.order)
    return {"wall": walls[1], "warmup": walls[0], "nodes": s.nodes}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
