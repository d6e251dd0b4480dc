"""Concurrency on the real stack (PostgreSQL, Dagster webserver + daemon with the run coordinator, two API
processes): 5 executions launched at once through the two APIs of a workflow with ``concurrency: {limit: 2}``.

``queue``: never more than 2 of its runs in progress at any moment (Dagster's run storage sampled all along), all 5
end completed. ``skip``: 2 run, the 3 others end cancelled, "skipped: ...", with a ``workflow_skipped`` event. A
node ``pool:`` with 1 slot shared by two executions: the pooled nodes never overlap. ``mirror verify`` finds no
difference for any execution.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from _api_stack import ApiStack
from _defs import chain, definition, node
from _mirror_support import RunSampler

from maestro_dagster.db.session import get_db
from maestro_dagster.instance import get_instance
from maestro_dagster.launcher.concurrency import apply_pools
from maestro_dagster.mirror.verify import verify_execution
from maestro_dagster.settings import get_settings
from maestro_dagster.tags import TAG_WORKFLOW_ID

LAUNCHES = 5


def _napping(workflow_id: str, seconds: float, **fields) -> dict:
    nodes = {"nap": node("sleep", config={"seconds": seconds}), "after": node("echo")}
    return definition(workflow_id, nodes, chain(*nodes), **fields)


def _launch_at_once(api: ApiStack, workflow_id: str) -> list[str]:
    """5 launches at the same moment, from 5 threads, spread over both API processes (a barrier releases them
    together): each answers 202 (the API's Dagster client is one per thread, so none is refused)."""
    barrier = threading.Barrier(LAUNCHES)

    def launch(i: int) -> str:
        with api.client("operator", base=(api.url_a, api.url_b)[i % 2]) as c:
            barrier.wait(60)
            response = c.post(f"/api/workflows/{workflow_id}/execute", json={"initial_context": {}})
        assert response.status_code == 202, response.text
        return response.json()["execution_id"]

    with ThreadPoolExecutor(LAUNCHES) as pool:
        return list(pool.map(launch, range(LAUNCHES)))


def _verified(instance, execution_ids: list[str]) -> None:
    with get_db(get_settings()) as session:
        for execution_id in execution_ids:
            assert verify_execution(session, instance, execution_id) == [], execution_id


@pytest.mark.parametrize("on_limit", ["queue", "skip"])
def test_five_launches_at_once_hold_the_limit(api: ApiStack, on_limit: str) -> None:
    workflow_id = f"conc_{on_limit}"
    api.store_and_load(
        _napping(workflow_id, 4 if on_limit == "queue" else 15, concurrency={"limit": 2, "on_limit": on_limit})
    )
    instance = get_instance(get_settings())
    try:
        sampler = RunSampler(instance, {TAG_WORKFLOW_ID: workflow_id})
        ids = _launch_at_once(api, workflow_id)
        bodies = [api.wait_status(i, {"completed", "cancelled"}, timeout=600) for i in ids]
        most = sampler.stop()
        assert most <= 2, f"{most} runs of {workflow_id} were in progress at once"
        statuses = sorted(b["status"] for b in bodies)
        if on_limit == "queue":
            assert statuses == ["completed"] * LAUNCHES and most == 2
        else:
            assert statuses == ["cancelled"] * 3 + ["completed"] * 2, statuses
            for body in bodies:
                if body["status"] == "cancelled":
                    assert body["error_message"] == (
                        f"skipped: workflow {workflow_id!r} reached its concurrency limit 2 (on_limit: skip)"
                    )
                    with api.client("viewer") as viewer:
                        events = viewer.get(f"/api/executions/{body['execution_id']}/events").json()
                    items = events["items"] if isinstance(events, dict) else events
                    assert "workflow_skipped" in [e["type"] for e in items]
        _verified(instance, ids)
    finally:
        instance.dispose()


def test_a_pool_of_one_slot_keeps_pooled_nodes_of_two_executions_apart(api: ApiStack) -> None:
    nodes = {"first": node("echo"), "pooled": node("sleep", config={"seconds": 3}, pool="conc_pool_one")}
    api.store_and_load(definition("conc_pooled", nodes, chain(*nodes)))
    instance = get_instance(get_settings())
    try:
        apply_pools(instance, {"conc_pool_one": 1})
        assert {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()}["conc_pool_one"] == 1
        ids = [api.execute("conc_pooled")["execution_id"] for _ in range(2)]
        spans = []
        for execution_id in ids:
            body = api.wait_status(execution_id, "completed", timeout=600)
            pooled = {n["node_id"]: n for n in body["node_states"]}["pooled"]
            spans.append((datetime.fromisoformat(pooled["started_at"]), datetime.fromisoformat(pooled["completed_at"])))
        (_, first_end), (second_start, _) = sorted(spans)
        assert first_end <= second_start, f"the pooled nodes overlapped: {spans}"
        _verified(instance, ids)
    finally:
        instance.dispose()
