"""Op outputs kept as JSON in Maestro's database (``node_outputs``) through ``node_outputs_io_manager``.

The codec gives back exactly what ops pass (``NodeResult``, lists and dicts of them, JSON) and refuses the rest
naming the step and output; ``put_output`` / ``get_output`` upsert and read one row on SQLite and PostgreSQL, and
retention deletes the rows of the runs it removes; a real multiprocess run stores every step's output there and
nothing under DAGSTER_HOME/storage; a re-execution from failure loads the outputs its parent made from the parent's
rows, with the parent's storage directory gone, and fails with a clear error when those rows were deleted.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from _defs import chain, definition, echo, node
from _output_jobs import reconstructable
from sqlalchemy import select

from maestro_dagster.compiler.envelope import NodeResult
from maestro_dagster.compiler.output_codec import decode_output, encode_output
from maestro_dagster.db.models import NodeOutput
from maestro_dagster.db.outputs import OutputKey, delete_outputs_of_runs, get_output, put_output
from maestro_dagster.db.session import get_db
from maestro_dagster.errors import ExecutorError

MISSING = object()


def _result(node_id: str, **output: Any) -> NodeResult:
    return NodeResult(
        node_id=node_id,
        status="completed",
        output=dict(output),
        artifacts=[f"/tmp/{node_id}.txt"],
        all_outputs={"up": {"k": [1, None]}, node_id: dict(output)},
        all_artifacts={node_id: [f"/tmp/{node_id}.txt"]},
    )


# ---- the codec ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        _result("a", rows=3, nested={"x": [1.5, True, None]}),
        NodeResult(node_id="s", status="skipped"),
        [_result("w[0]", item=1), NodeResult(node_id="w[1]", status="skipped"), _result("w[2]", item=3)],
        {"item": {"name": "x"}, "index": 2, "upstream": {"a": _result("a"), "b": _result("b", n=1)}},
        {"item": {"$node_result": "a plain dict that looks like a tag"}, "index": 0, "upstream": {}},
        {"nested": [{"deep": _result("d")}], "t": (1, "two")},
        None,
        {"n": 1, "f": -0.25, "s": "é", "b": False, "l": [], "d": {}},
        "text",
        7,
    ],
    ids=["result", "skipped", "items", "fan", "tag_lookalike", "nested", "none", "json", "str", "int"],
)
def test_the_codec_gives_back_what_ops_pass(value):
    import json

    stored = json.loads(json.dumps(encode_output(value, step_key="s", output_name="result"), allow_nan=False))
    decoded = decode_output(stored)
    assert decoded == value
    assert type(decoded) is type(value)


def test_a_node_result_is_tagged_json():
    result = NodeResult(node_id="a", status="completed", output={"x": 1})
    assert encode_output([result], step_key="s", output_name="result") == [{"$node_result": result.model_dump()}]


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"ok": 1, "bad": {1, 2}}, "the value['bad'] is a set"),
        ([b"bytes"], "the value[0] is a bytes"),
        ({1: "x"}, "the value key 1 is a int"),
        ({"x": float("nan")}, "the value['x'] is a float"),
        (object(), "the value is a object"),
    ],
)
def test_a_value_that_is_not_json_is_refused_naming_the_step_and_output(value, where):
    with pytest.raises(ExecutorError) as raised:
        encode_output(value, step_key="work[3]", output_name="item")
    message = str(raised.value)
    assert "Output 'item' of step 'work[3]' cannot be stored" in message
    assert where in message
    assert "stored as JSON" in message
    assert raised.value.details["step_key"] == "work[3]"


# ---- put / get / delete on both databases ------------------------------------------------------------------------


def test_put_get_and_upsert(db_session):
    key = OutputKey("run-1", "a", "result")
    assert get_output(db_session, key) is None
    put_output(db_session, key, {"v": 1})
    put_output(db_session, OutputKey("run-1", "w__for_each", "item", "0"), [1])
    put_output(db_session, OutputKey("run-1", "w__for_each", "item", "1"), [2])
    assert get_output(db_session, key) == {"v": 1}
    put_output(db_session, key, {"v": 2})  # a retried step writes its key again
    assert get_output(db_session, key) == {"v": 2}
    assert get_output(db_session, OutputKey("run-1", "w__for_each", "item", "1")) == [2]
    assert get_output(db_session, OutputKey("run-1", "w__for_each", "item")) is None  # "" is not an item
    rows = db_session.scalars(select(NodeOutput).where(NodeOutput.run_id == "run-1")).all()
    assert sorted((r.step_key, r.mapping_key) for r in rows) == [("a", ""), ("w__for_each", "0"), ("w__for_each", "1")]
    assert all(r.created_at.tzinfo is not None for r in rows)


def test_a_stored_null_is_told_from_a_missing_row(db_session):
    key = OutputKey("run-null", "w__for_each", "result")
    assert get_output(db_session, key, MISSING) is MISSING
    put_output(db_session, key, None)
    assert get_output(db_session, key, MISSING) is None


def test_delete_outputs_of_runs(db_session):
    for run_id in ("r1", "r2", "r3"):
        put_output(db_session, OutputKey(run_id, "a", "result"), run_id)
        put_output(db_session, OutputKey(run_id, "b", "result"), run_id)
    assert delete_outputs_of_runs(db_session, ["r1", "r3", "r1"]) == 4
    assert delete_outputs_of_runs(db_session, []) == 0
    assert db_session.scalars(select(NodeOutput.run_id).distinct()).all() == ["r2"]


def test_retention_deletes_the_outputs_of_the_runs_it_removes(db_session):
    from datetime import date

    from maestro_dagster.db.models import ExecutionRun
    from maestro_dagster.db.repositories import DefinitionRecord, RepositoryFactory
    from maestro_dagster.reporting.retention import delete_executions

    nodes = {"a": {"name": "a"}}
    record = DefinitionRecord(
        id="wf_out", name="wf_out", nodes=nodes, edges=[], definition={"id": "wf_out", "nodes": nodes}, content_hash="h"
    )
    repos = RepositoryFactory(db_session)
    repos.workflow.create(record)
    gone, kept = repos.execution.create("wf_out"), repos.execution.create("wf_out")
    db_session.add_all(
        [ExecutionRun(run_id="run-gone", execution_id=gone.id), ExecutionRun(run_id="run-kept", execution_id=kept.id)]
    )
    db_session.flush()
    for run_id in ("run-gone", "run-kept"):
        put_output(db_session, OutputKey(run_id, "a", "result"), {"run": run_id})
    delete_executions(db_session, date(2026, 1, 1), [gone.id])
    assert get_output(db_session, OutputKey("run-gone", "a", "result")) is None
    assert get_output(db_session, OutputKey("run-kept", "a", "result")) == {"run": "run-kept"}


# ---- real runs ----------------------------------------------------------------------------------------------------


@pytest.fixture
def home(db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Dagster home beside the migrated Maestro database of ``db`` (both reached through the environment)."""
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture
def instance(home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(home)) as inst:
        yield inst


def _rows(run_id: str) -> dict[tuple[str, str, str], Any]:
    with get_db() as session:
        rows = session.scalars(select(NodeOutput).where(NodeOutput.run_id == run_id)).all()
        return {(r.step_key, r.output_name, r.mapping_key): decode_output(r.value) for r in rows}


def _stored_files(home: Path, run_id: str) -> list[str]:
    """Files under the run's storage directory other than compute logs (the filesystem IO manager's would be
    ``storage/<run_id>/<step_key>/<output>``)."""
    run_dir = home / "storage" / run_id
    if not run_dir.exists():
        return []
    return sorted(
        str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file() and "compute_logs" not in p.parts
    )


def _config(executor: str) -> dict[str, Any]:
    return {"initial_context": {"k": 1}, "execution": {"config": {executor: {}}}}


def test_a_multiprocess_run_keeps_every_output_in_the_database(instance, home):
    raw = definition("outputs_chain", {"a": echo(output={"rows": 3}), "b": echo(), "c": echo()}, chain("a", "b", "c"))
    result = dg.execute_job(reconstructable(raw), instance=instance, run_config=_config("multiprocess"))
    assert result.success
    rows = _rows(result.run_id)
    assert set(rows) == {("a", "result", ""), ("b", "result", ""), ("c", "result", "")}
    c = rows[("c", "result", "")]
    assert isinstance(c, NodeResult) and c.status == "completed"
    assert c.output is not None and c.output["dependencies"] == ["b"]
    assert c.all_outputs["a"]["rows"] == 3  # a's output reached c through b's row, read by c's process
    assert _stored_files(home, result.run_id) == []
    loaded = [e.step_key for e in instance.all_logs(result.run_id, of_type=dg.DagsterEventType.LOADED_INPUT)]
    assert sorted(loaded) == ["b", "c"]


def _fan(until_file: Path) -> dict[str, Any]:
    work = {"fail_items": [2], "until_file": str(until_file)}
    nodes = {
        "list": echo(output={"numbers": [1, 2, 3]}),
        "work": node("process_item", for_each="outputs['list']['numbers']", config=work),
        "total": echo(),
    }
    return definition("outputs_fan", nodes, chain("list", "work", "total"))


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_reexecution_from_failure_loads_the_parents_outputs_from_its_rows(instance, home, tmp_path):
    until = tmp_path / "item-2-ok"
    job = reconstructable(_fan(until))
    parent = dg.execute_job(job, instance=instance, run_config=_config("in_process"))
    assert not parent.success
    made = _rows(parent.run_id)
    assert {k for k in made if k[0] == "work__for_each"} == {
        ("work__for_each", "result", ""),  # the items summary for the mirror: a stored null
        ("work__for_each", "item", "0"),
        ("work__for_each", "item", "1"),
        ("work__for_each", "item", "2"),
    }
    assert made[("work__for_each", "result", "")] is None
    assert isinstance(made[("work__for_each", "item", "1")]["upstream"]["list"], NodeResult)
    assert ("work[1]", "result", "") not in made and ("work[2]", "result", "") in made

    until.touch()
    shutil.rmtree(home / "storage" / parent.run_id, ignore_errors=True)  # nothing to read there
    options = dg.ReexecutionOptions.from_failure(parent.run_id, instance)
    child = dg.execute_job(job, instance=instance, run_config=_config("in_process"), reexecution_options=options)
    assert child.success
    own = _rows(child.run_id)
    assert set(own) == {("work[1]", "result", ""), ("total", "result", "")}  # only what it ran
    total = own[("total", "result", "")]
    assert total.all_outputs["work"] == {
        "items": [{"item": n, "item_index": i, "doubled": 2 * n} for i, n in enumerate([1, 2, 3])]
    }
    assert _stored_files(home, child.run_id) == []


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_reexecution_whose_parents_outputs_were_deleted_fails_clearly(instance, home, tmp_path):
    until = tmp_path / "item-2-ok"
    job = reconstructable(_fan(until))
    parent = dg.execute_job(job, instance=instance, run_config=_config("in_process"))
    assert not parent.success
    with get_db() as session:
        assert delete_outputs_of_runs(session, [parent.run_id]) > 0
    until.touch()
    options = dg.ReexecutionOptions.from_failure(parent.run_id, instance)
    child = dg.execute_job(job, instance=instance, run_config=_config("in_process"), reexecution_options=options)
    assert not child.success
    failures = [e for e in instance.all_logs(child.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)]
    assert [e.step_key for e in failures] == ["work[1]"]
    text = failures[0].dagster_event.step_failure_data.error.to_string()
    assert "Output 'item' (item '1') of step 'work__for_each'" in text
    assert f"of run {parent.run_id} is not in Maestro's database" in text
    assert "deleted by retention" in text
