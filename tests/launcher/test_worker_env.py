"""Run workers never hold the API's secrets: the real worker process's environment (/proc/<pid>/environ) lacks
MAESTRO_API_TOKENS although the launching process has it, and a command node run in it sees no secret at all."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from test_launcher import execution_status, finished, launch, wait_for

from maestro_dagster.db.models import NodeState
from maestro_dagster.db.session import get_db
from maestro_dagster.launcher.launcher import worker_alive
from maestro_dagster.settings import get_settings

TOKENS = json.dumps({"s3cret-admin-token": {"role": "admin", "name": "ops"}})
PRINT_ENV = "import json, os; print(json.dumps(sorted(os.environ)))"


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.decode().split("=", 1) for item in raw.split(b"\0") if item)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_run_workers_and_their_nodes_never_get_the_api_tokens(maestro_env, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MAESTRO_API_TOKENS", TOKENS)
    monkeypatch.setenv("POSTGRES_PASSWORD", "pg-pass")
    get_settings.cache_clear()
    assert get_settings().api_tokens  # the launching process (daemon, webserver, API) has them
    probe = {"executor": "command", "config": {"args": [sys.executable, "-c", PRINT_ENV]}}
    maestro_env.add_definition({"id": "env_probe", "nodes": {"probe": probe}, "edges": []})
    launcher = maestro_env.instance.run_launcher
    try:
        run_id, execution_id = launch(maestro_env, "env_probe")
        worker = wait_for(lambda: launcher._warm, 60, "the next warm worker to be started")[0]
        # between fork and exec the child is still a copy of this process (its cmdline and environ are ours)
        wait_for(lambda: worker_alive(worker.pid), 60, "the warm worker to exec")
        worker_env = environ_of(worker.pid)
        assert "MAESTRO_API_TOKENS" not in worker_env and "s3cret-admin-token" not in "".join(worker_env.values())
        assert worker_env["MAESTRO_HOME"] == str(maestro_env.settings.home)  # the rest of its environment is there
        assert worker_env["POSTGRES_PASSWORD"] == "pg-pass"  # a worker needs its database settings ...

        assert finished(maestro_env, run_id).status.value == "SUCCESS"
        wait_for(lambda: execution_status(maestro_env, execution_id) == "completed", 30, "mirrored")
        with get_db(maestro_env.settings) as session:
            (state,) = session.query(NodeState).filter_by(execution_id=execution_id).all()
            seen = json.loads(state.outputs["stdout_tail"])
        # ... but a node's child gets none of them.
        assert not {"MAESTRO_API_TOKENS", "POSTGRES_PASSWORD", "MAESTRO_DATABASE_URL", "DAGSTER_HOME"} & set(seen)
        assert "MAESTRO_NODE_ID" in seen and "PATH" in seen
    finally:
        launcher.dispose()
