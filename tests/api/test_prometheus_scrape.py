"""A real Prometheus server (Debian's ``prometheus``, installed by ``.ci/run``) scrapes ``/metrics`` of a real API
server, on SQLite and PostgreSQL: PromQL queries return the numbers the tables hold (the hand-computed dataset of
``tests/_report_data.py``), and every metric the shipped Grafana dashboards name exists in Prometheus."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from _procs import free_port, wait_for
from _report_data import insert

from maestro_dagster.db.session import get_db

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"
SERIES = re.compile(r"\b(maestro_[a-z_]+)\b")


def _exprs() -> list[str]:
    board = json.loads((DASHBOARDS / "maestro-prometheus.json").read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in board["templating"]["list"] if v.get("definition")]
    return exprs


@pytest.fixture
def prometheus(served, tmp_path):
    binary = shutil.which("prometheus")
    assert binary, "Prometheus is not installed: `apt-get install -y prometheus` (.ci/run does it)"
    target = served.url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs: [{job_name: maestro, metrics_path: /metrics,"
        f" static_configs: [{{targets: ['{target}']}}]}}]\n"
    )
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(url) or proc.poll() is not None, 60, "Prometheus to start")
        assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _query(url: str, promql: str) -> dict[tuple, float]:
    body = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10).json()
    assert body["status"] == "success", body
    return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in body["data"]["result"]}


def test_promql_returns_what_the_tables_hold(served, prometheus):
    with get_db(served.settings) as session:
        insert(session)
    by_status = 'sum by (workflow_id, status) (maestro_executions{job="maestro"})'
    expected = {
        (("status", "completed"), ("workflow_id", "alpha")): 2.0,
        (("status", "failed"), ("workflow_id", "alpha")): 1.0,
        (("status", "running"), ("workflow_id", "beta")): 1.0,
        (("status", "cancelled"), ("workflow_id", "beta")): 1.0,
    }
    wait_for(lambda: _query(prometheus, by_status) == expected, 120, "Prometheus to scrape the dataset's executions")
    # Each figure is waited for: under load a scrape can fail (/metrics answers 503 past its database budget), and
    # Prometheus then marks every series of the target stale until the next good scrape.
    _until(
        prometheus,
        '100 * sum(maestro_executions{status="completed"})'
        ' / sum(maestro_executions{status=~"completed|failed|cancelled"})',
        [50.0],
    )  # report_summary's success_rate
    _until(
        prometheus,
        "sum(maestro_execution_duration_seconds_sum) / sum(maestro_execution_duration_seconds_count)",
        [35.0],
    )  # as SELECT avg_duration_seconds FROM report_summary
    _until(prometheus, 'maestro_execution_duration_seconds_bucket{workflow_id="alpha", le="60.0"}', [2.0])
    failures = 'sum by (workflow_id, node_id) (maestro_node_failures_total{workflow_id="alpha", node_id="a"})'
    _until(prometheus, failures, [1.0])
    retries = 'sum by (workflow_id, node_id) (maestro_node_retries_total{workflow_id="alpha", node_id="b"})'
    _until(prometheus, retries, [2.0])  # fmt: skip


def _until(url: str, promql: str, values: list[float]) -> None:
    """Until the query's values are ``values`` (generous bound: two shared cores)."""
    wait_for(lambda: list(_query(url, promql).values()) == pytest.approx(values), 120, f"{values} for {promql}")


def test_every_metric_the_dashboards_name_exists(served, prometheus):
    with get_db(served.settings) as session:
        insert(session)
    named = sorted({m for expr in _exprs() for m in SERIES.findall(expr)})
    assert len(named) >= 8, named
    expected = set(named)

    def scraped() -> set[str]:
        names = httpx.get(f"{prometheus}/api/v1/label/__name__/values", timeout=10).json()["data"]
        return expected - set(names)

    wait_for(lambda: not scraped(), 120, f"Prometheus to hold every series the dashboard names ({expected})")
    for expr in _exprs():  # every expression parses and evaluates in this Prometheus
        if expr.startswith("label_values"):
            continue
        promql = expr.replace("$workflow", ".*")
        body = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10).json()
        assert body["status"] == "success", (promql, body)
