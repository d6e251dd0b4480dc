"""A first end-to-end check of the mirror: one diamond run, through Dagster, mirrored and verified."""

from __future__ import annotations

from maestro_dagster.db import RepositoryFactory, get_db

DIAMOND = {
    "id": "diamond",
    "nodes": {"a": {}, "b": {}, "c": {}, "d": {}},
    "edges": [
        {"source": "a", "target": "b"},
        {"source": "a", "target": "c"},
        {"source": "b", "target": "d"},
        {"source": "c", "target": "d"},
    ],
}


def test_diamond_run_is_mirrored(maestro_env):
    maestro_env.add_definition(DIAMOND)
    result = maestro_env.run("diamond", {"requirement": "x"})
    assert result.success
    with get_db(maestro_env.settings) as session:
        repos = RepositoryFactory(session)
        execution = repos.execution.require(result.execution_id)
        assert execution.status.value == "completed"
        assert (execution.completed_nodes, execution.total_nodes, execution.progress_percent) == (4, 4, 100.0)
        events = [e.event_type.value for e in repos.event.list_by_execution(result.execution_id)]
        assert events[0] == "workflow_started" and events[-1] == "workflow_completed"
        assert events.count("node_started") == 4 and events.count("node_completed") == 4
    assert maestro_env.verify(result.execution_id) == []
