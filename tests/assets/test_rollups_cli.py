"""``maestro rollups build|check`` on SQLite and PostgreSQL with a real Dagster instance: a 3-day build prints one
line per day and records the materializations in Dagster; a check finds a tampered day and exits 1; bad days are
clear errors."""

from __future__ import annotations

import pytest
from _report_data import D1, insert
from dagster import AssetKey
from sqlalchemy import update

from maestro_dagster.cli import main as cli_main
from maestro_dagster.db.models import DailyWorkflowStats
from maestro_dagster.db.session import get_db


def _cli(capsys, *args: str) -> tuple[int, list[str], str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as excinfo:
        cli_main(list(args))
    out, err = capsys.readouterr()
    return excinfo.value.code or 0, out.splitlines(), err


def test_build_over_three_days_then_check_a_tampered_one(maestro_env, capsys):
    with get_db(maestro_env.settings) as session:
        insert(session)
    code, lines, err = _cli(capsys, "rollups", "build", "--from", "2026-10-01", "--to", "2026-10-03")
    assert code == 0, err
    assert [line.split(":")[0] for line in lines] == ["2026-10-01", "2026-10-02", "2026-10-03"]
    assert lines[0].startswith("2026-10-01: rebuilt, 3 execution(s), 1 workflow(s), 2 node row(s); check passed")
    assert "0 execution(s)" in lines[2]
    for table in ("daily_workflow_stats", "daily_node_stats", "daily_duration_buckets"):
        partitions = maestro_env.instance.get_materialized_partitions(AssetKey(table))
        assert partitions == {"2026-10-01", "2026-10-02", "2026-10-03"}

    code, lines, _ = _cli(capsys, "rollups", "check", "--from", "2026-10-01", "--to", "2026-10-02")
    assert code == 0 and [line.split(" (run")[0] for line in lines] == [
        "2026-10-01: check passed",
        "2026-10-02: check passed",
    ]

    with get_db(maestro_env.settings) as session:
        session.execute(update(DailyWorkflowStats).where(DailyWorkflowStats.day == D1).values(completed=9))
    code, lines, _ = _cli(capsys, "rollups", "check", "--from", "2026-10-01")
    assert code == 1
    assert lines[0].startswith("2026-10-01: check FAILED (1 difference(s))")
    assert "completed is 9, the raw rows give 2" in lines[1]

    code, lines, _ = _cli(capsys, "rollups", "build", "--from", "2026-10-01")  # a rebuild repairs it
    assert code == 0 and len(lines) == 1 and "check passed" in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2026-13-01"), "--from '2026-13-01' is not a day"),
        (("--from", "2026-10-05", "--to", "2026-10-01"), "--from 2026-10-05 is after --to 2026-10-01"),
        (("--from", "2019-12-31"), "partitions run from 2020-01-01"),
        (("--from", "2999-01-01"), "are not all rollup partitions"),
    ],
)
def test_days_outside_the_partitions_are_clear_errors(db, capsys, args, message):
    for command in ("build", "check"):
        code, _, err = _cli(capsys, "rollups", command, *args)
        assert code == 1 and message in err and "Traceback" not in err
