"""The status answer's two statements on both backends, without HTTP: an execution found by its id or by a run id,
its runs in launch order, its nodes in order with their artifacts; an unknown reference is a NotFoundError."""

from __future__ import annotations

import pytest
from _defs import chain, definition, echo, node

from maestro_dagster.api.queries import execution_status
from maestro_dagster.db.session import get_db
from maestro_dagster.errors import NotFoundError


def test_status_answer_by_execution_id_and_by_run_id(maestro_env):
    out = maestro_env.settings.artifacts_dir / "out"  # artifacts are recorded only inside the artifact roots
    nodes = {
        "first": echo(output={"rows": 3}),
        "files": node("write_file", config={"path": str(out / "a.txt"), "content": "aaa"}),
        "broken": node("fail"),
    }
    maestro_env.add_definition(definition("status_query", nodes, chain("first", "files", "broken")))
    failed = maestro_env.run("status_query")
    assert not failed.success
    resumed = maestro_env.resume(failed.execution_id)

    with get_db(maestro_env.settings) as session:
        by_id = execution_status(session, failed.execution_id)
        by_run = execution_status(session, failed.run_id)
        with pytest.raises(NotFoundError, match="neither an execution id nor a Dagster run id"):
            execution_status(session, "no_such_execution")

    assert by_run == by_id
    assert (by_id.status, by_id.completed_nodes, by_id.failed_nodes, by_id.total_nodes) == ("failed", 2, 1, 3)
    assert [(r.run_id, r.kind) for r in by_id.runs] == [(failed.run_id, "initial"), (resumed.run_id, "resume")]
    assert [n.node_id for n in by_id.node_states] == ["first", "files", "broken"]
    shown = {n.node_id: n for n in by_id.node_states}
    assert shown["first"].outputs["rows"] == 3 and shown["first"].artifacts == []
    assert shown["files"].artifacts == [str(out / "a.txt")]
    assert shown["broken"].status == "failed" and shown["broken"].attempt_count == 2 and shown["broken"].error
