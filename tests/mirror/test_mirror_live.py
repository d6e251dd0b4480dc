"""The run's own mirror follows it while it runs (periodic passes on a kept view), also when a catch-up pass
from elsewhere writes the same execution in between; the rows end exactly as a full replay makes them."""

from __future__ import annotations

import itertools
import threading
import time

from _mirror_support import definition, node
from sqlalchemy import select

from maestro_dagster.db.enums import NodeStatus
from maestro_dagster.db.models import NodeState, WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.mirror import sync_runs


def test_live_passes_follow_the_run_and_survive_a_catch_up_in_between(maestro_env):
    ids = [f"n{i}" for i in range(1, 6)]
    nodes = {i: node("sleep", config={"seconds": 0.5}) for i in ids}
    maestro_env.add_definition(definition("live_flow", nodes, list(itertools.pairwise(ids))))
    settings = maestro_env.settings
    progress: list[int] = []
    synced: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            with get_db(settings) as session:
                execution_id = session.scalar(
                    select(WorkflowExecution.id).where(WorkflowExecution.workflow_id == "live_flow")
                )
                if execution_id is not None:
                    done = session.scalars(select(NodeState.status).where(NodeState.execution_id == execution_id)).all()
                    progress.append(sum(s is NodeStatus.COMPLETED for s in done))
            if progress and 1 <= progress[-1] <= 3 and not synced:  # mid-run: another writer of the execution
                synced.append(len(sync_runs(maestro_env.instance, settings=settings).runs))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = maestro_env.run("live_flow")
    finally:
        stop.set()
        watcher.join()
    assert result.success
    assert synced == [1], "the catch-up pass ran while the run was going"
    middle = [p for p in progress if 0 < p < len(ids)]
    assert len(set(middle)) >= 3, f"the tables followed the run node by node: {progress}"
    assert progress == sorted(progress), "progress never went backwards"
    assert maestro_env.verify(result.execution_id) == []
