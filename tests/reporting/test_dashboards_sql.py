"""Every query of the shipped Grafana dashboard over the SQL views (``dashboards/maestro-sql.json``, Grafana's
PostgreSQL data source) runs on the migrated schema and answers from the hand-computed dataset. Grafana's macros
are replaced as Grafana would expand them for a window holding the dataset; the same SQL runs on SQLite."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from _report_data import D1, D2
from sqlalchemy import text

from maestro_dagster.db.dialect import is_postgresql
from maestro_dagster.reporting import rollups

BOARD = Path(__file__).resolve().parents[2] / "dashboards" / "maestro-sql.json"
TIME_FILTER = re.compile(r"\$__timeFilter\((\w+)\)")


def _queries() -> dict[str, str]:
    board = json.loads(BOARD.read_text())
    return {p["title"]: t["rawSql"] for p in board["panels"] for t in p["targets"]}


def _expand(sql: str, schema: str) -> str:
    sql = sql.replace("${schema}.", f"{schema}." if schema else "")
    return TIME_FILTER.sub(r"\1 >= '2026-09-01' AND \1 < '2026-11-01'", sql)


def test_every_dashboard_query_runs_and_answers(report_data, fast_db):
    rollups.rebuild_day(report_data, D1)
    rollups.rebuild_day(report_data, D2)
    schema = fast_db.settings.schema_name if is_postgresql(report_data) else ""
    queries = _queries()
    assert len(queries) >= 6
    answers = {
        title: report_data.execute(text(_expand(sql, schema))).mappings().all() for title, sql in queries.items()
    }
    assert all(answers.values()), [title for title, rows in answers.items() if not rows]
    per_day = {str(r["time"])[:10]: float(r["success_rate"]) for r in answers["Success rate per day (%)"]}
    assert per_day == {"2026-10-01": pytest.approx(200 / 3), "2026-10-02": 0.0}
    top = answers["Top failing nodes"][0]
    assert (top["workflow_id"], top["node_id"], top["failed"]) == ("alpha", "a", 1)
    assert {r["error_type"] for r in answers["Recent failures"]} == {"ValueError", "RuntimeError"}
