"""One measurement of Airflow 3 for bench/bench_peers.py, run by bench/.peers/airflow's Python in a fresh process.

    bench/.peers/airflow/bin/python bench/peers/run_airflow.py dag_test SHAPE

A DAG whose tasks are the shape's nodes (TaskFlow ``@task`` of ``shapes.node``, each given its upstream tasks'
results, so every result goes through XCom), run by ``dag.test()``: Airflow's own loop of a DAG run in this process
against its metadata database, no scheduler. AIRFLOW_HOME is the directory in BENCH_TMP, holding a copy of a
migrated SQLite database (BENCH_AIRFLOW_DB, made once by ``airflow db migrate``) and the DAG file in its dags
folder (``dag.test`` syncs the DAG from its bundle). The DAG runs once as a warm-up, then again, timed; both
are checked (DAG run state success, every task instance success). Prints one JSON line: the timed run's wall,
the warm-up's, the node count.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from shapes import shape  # noqa: E402

DAG_FILE = """\
import os, sys
sys.path.insert(0, {here!r})
from datetime import datetime
from airflow.sdk import dag, task
from shapes import node, shape

SHAPE = shape(os.environ["BENCH_SHAPE"])


@dag(dag_id="bench_peers", schedule=None, start_date=datetime(2024, 1, 1), catchup=False)
def bench_peers():
    done = {{}}
    for node_id in SHAPE.order:
        done[node_id] = task(node, task_id=node_id)(*[done[up] for up in SHAPE.upstream[node_id]])


DAG = bench_peers()
"""


def main(variant: str, shape_name: str) -> dict[str, Any]:
    if variant != "dag_test":
        raise SystemExit(f"unknown variant {variant!r}: use dag_test")
    s = shape(shape_name)
    home = Path(os.environ["BENCH_TMP"]) / "airflow"
    (home / "dags").mkdir(parents=True)
    shutil.copy(os.environ["BENCH_AIRFLOW_DB"], home / "airflow.db")
    (home / "dags" / "bench_peers_dag.py").write_text(DAG_FILE.format(here=str(HERE)))
    for name in list(os.environ):
        if name.startswith("AIRFLOW"):
            del os.environ[name]
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",  # the console at WARNING, as the product's runs are measured
        BENCH_SHAPE=s.name,
    )
    import importlib.util

    from airflow.utils.state import DagRunState, TaskInstanceState

    spec = importlib.util.spec_from_file_location("bench_peers_dag", home / "dags" / "bench_peers_dag.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.DAG
    walls = []
    for _ in range(2):
        started = time.perf_counter()
        dr = dag.test(logical_date=None)
        walls.append(time.perf_counter() - started)
        assert dr.state == DagRunState.SUCCESS, f"DAG run of {s.name} ended {dr.state}"
        states = [ti.state for ti in dr.get_task_instances()]
        assert len(states) == s.nodes and all(st == TaskInstanceState.SUCCESS for st in states), states
    return {"wall": walls[1], "warmup": walls[0], "nodes": s.nodes}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
