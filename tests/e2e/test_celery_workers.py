"""Steps on Celery workers (issue 18): real RabbitMQ, real PostgreSQL, ``maestro worker`` processes.

Each worker is a process of its own, in an empty working directory of its own with its own ``MAESTRO_HOME``, and an
environment that holds only the database URL, the broker URL and the executor allowlist (no ``DAGSTER_HOME``, no
``dagster.yaml``, no path of the orchestrator): it shares nothing with the orchestrating ``maestro run`` but the
broker and the database. (Separate network namespaces were not used: they need root and a bridge to reach the
shared RabbitMQ and PostgreSQL; the workers are kept apart by what they can read instead.) Every test uses queues
named for this session, so nothing else on the broker takes its steps.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import uuid
from collections.abc import Iterator

import pytest
import yaml
from _defs import definition, fan_out, node
from _e2e_home import BIN, Stack, failed
from _e2e_procs import Proc, descendants, pid_alive, wait_for
from _procs import TEST_SETTINGS
from sqlalchemy import select

from maestro_dagster.db.models import WorkflowExecution
from maestro_dagster.db.session import get_db
from maestro_dagster.defs_store import sync_directory
from maestro_dagster.settings import get_settings

pytestmark = pytest.mark.e2e
BROKER = os.environ.get("MAESTRO_TEST_CELERY_BROKER_URL", "pyamqp://guest:guest@127.0.0.1:5672//")
SESSION = uuid.uuid4().hex[:8]
MAIN, HEAVY, REEXEC, KILL = (f"t{SESSION}_{name}" for name in ("main", "heavy", "reexec", "kill"))
EXECUTED = re.compile(r"Executing steps (?P<steps>.+) in celery worker")


class Cluster(Stack):
    """The orchestrator's home (``maestro run`` runs there, the webserver and daemon when started) and the workers."""

    def worker(self, name: str, *queues: str) -> Proc:
        """``maestro worker`` for ``queues``, alone in ``work/workers/<name>`` (its cwd and its MAESTRO_HOME)."""
        root = self.work / "workers" / name
        root.mkdir(parents=True)
        env = {"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1", "MAESTRO_HOME": str(root / "home"), **TEST_SETTINGS}
        env.update(MAESTRO_DATABASE_URL=self.env["MAESTRO_DATABASE_URL"], MAESTRO_CELERY_BROKER_URL=BROKER)
        args = [sys.executable, "-m", "maestro_dagster", "worker", "--name", f"{name}@test"]
        args += [a for q in queues for a in ("--queue", q)]
        proc = Proc(name, args, env, self.logs / f"{name}.log", cwd=root)
        self.procs.append(proc)
        wait_for(lambda: " ready." in proc.log.read_text() or not proc.alive(), 180, f"worker {name} to be ready")
        assert proc.alive(), proc.log.read_text()[-3000:]
        return proc

    def add(self, raw: dict) -> None:
        (self.defs_dir / f"{raw['id']}.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        settings = get_settings()
        with get_db(settings, immediate=True) as session:
            results = sync_directory(session, self.defs_dir, settings)
        assert all(r.valid for r in results), [r.errors for r in results if not r.valid]

    def run_async(self, *args: str) -> Proc:
        return self.start(f"run-{uuid.uuid4().hex[:6]}", sys.executable, "-m", "maestro_dagster", *args)

    def last_execution(self, workflow_id: str) -> WorkflowExecution:
        with get_db(get_settings()) as session:
            stmt = select(WorkflowExecution).where(WorkflowExecution.workflow_id == workflow_id)
            return session.scalars(stmt.order_by(WorkflowExecution.created_at.desc())).first()

    def workers_of(self, run_id: str) -> dict[str, list[str]]:
        """Step key -> the Celery workers that started it, in order (the engine events the workers store)."""
        found: dict[str, list[str]] = {}
        for record in self.instance.all_logs(run_id):
            event = record.dagster_event
            if event is None or event.event_type_value != "ENGINE_EVENT" or not EXECUTED.search(event.message or ""):
                continue
            metadata = event.event_specific_data.metadata
            found.setdefault(event.step_key, []).append(metadata["Celery worker"].value)
        return found

    def run_ids(self, execution_id: str) -> list[str]:
        return [row.run_id for row in self.runs(execution_id)]


@pytest.fixture(scope="module")
def cluster(pg_database_factory, tmp_path_factory) -> Iterator[Cluster]:
    mp = pytest.MonkeyPatch()
    home = Cluster(tmp_path_factory.mktemp("celery"), pg_database_factory())
    home.env.update(MAESTRO_CELERY_BROKER_URL=BROKER)
    home.apply(mp)
    mp.setenv("MAESTRO_CELERY_BROKER_URL", BROKER)
    get_settings.cache_clear()
    try:
        home.setup()
        yield home
    finally:
        home.stop_all()
        mp.undo()
        get_settings.cache_clear()


@pytest.fixture
def grid(cluster: Cluster, request, monkeypatch) -> Iterator[Cluster]:
    """The cluster, with this test process pointed at it; the workers' logs printed if the test failed."""
    cluster.apply(monkeypatch)
    monkeypatch.setenv("MAESTRO_CELERY_BROKER_URL", BROKER)
    get_settings.cache_clear()
    yield cluster
    if failed(request):
        print(cluster.log_tails())


@pytest.fixture(scope="module")
def main_workers(cluster: Cluster) -> tuple[Proc, Proc]:
    """Two workers of the main queue (concurrency 1 each) and one of the heavy queue, for the whole module."""
    workers = (cluster.worker("main1", MAIN), cluster.worker("main2", MAIN))
    cluster.worker("heavy1", HEAVY)
    return workers


def finished(grid: Cluster, proc: Proc, workflow_id: str, timeout: float = 300) -> WorkflowExecution:
    wait_for(lambda: not proc.alive(), timeout, f"`maestro run {workflow_id}` to end")
    execution = grid.last_execution(workflow_id)
    assert execution is not None, proc.log.read_text()[-3000:]
    return execution


def test_a_fan_out_of_20_nodes_runs_on_both_workers_and_is_mirrored_exactly(grid: Cluster, main_workers):
    raw = fan_out("cel_fan", 20, executor="sleep", config={"seconds": 0.5})
    grid.add({**raw, "executor": "celery", "queue": MAIN})
    done = grid.maestro("run", "cel_fan")
    assert done.returncode == 0, done.stdout + done.stderr
    execution = grid.last_execution("cel_fan")
    assert execution.status == "completed"
    nodes = grid.nodes(execution.id)
    assert len(nodes) == 22 and {n.status for n in nodes.values()} == {"completed"}
    (run_id,) = grid.run_ids(execution.id)
    ran_on = grid.workers_of(run_id)
    assert set(ran_on) == {"src", "sink", *(f"m{i}" for i in range(1, 21))}
    assert {w for names in ran_on.values() for w in names} == {"main1@test", "main2@test"}, ran_on
    assert grid.verify(run_id).returncode == 0
    assert not (grid.home / "dagster" / "storage" / run_id).exists(), "outputs must not be files of the orchestrator"


def test_a_run_launched_through_the_webserver_runs_on_the_workers(grid: Cluster, main_workers):
    """The Dagster UI's path (GraphQL submit, the daemon's queue, a run worker of the run launcher): the job's
    executor is Celery whoever launches it."""
    grid.add(definition("cel_ui", {"a": node("echo"), "b": node("echo")}, [("a", "b")], executor="celery", queue=MAIN))
    grid.start_servers()
    run_id = grid.launch("cel_ui")
    row = grid.wait_run_mirrored(run_id, 300)
    assert grid.execution(row.execution_id).status == "completed"
    ran_on = grid.workers_of(run_id)
    assert set(ran_on) == {"a", "b"} and {w for n in ran_on.values() for w in n} <= {"main1@test", "main2@test"}
    assert grid.verify(run_id).returncode == 0


def test_a_node_with_its_own_queue_runs_on_that_queue_s_workers(grid: Cluster, main_workers):
    nodes = {"light": node("echo"), "big": node("echo", queue=HEAVY, priority=7), "after": node("echo")}
    raw = definition("cel_route", nodes, [("light", "big"), ("big", "after")], executor="celery", queue=MAIN)
    grid.add(raw)
    done = grid.maestro("run", "cel_route")
    assert done.returncode == 0, done.stdout + done.stderr
    execution = grid.last_execution("cel_route")
    (run_id,) = grid.run_ids(execution.id)
    ran_on = grid.workers_of(run_id)
    assert ran_on["big"] == ["heavy1@test"]
    assert set(ran_on["light"] + ran_on["after"]) <= {"main1@test", "main2@test"}
    assert grid.verify(run_id).returncode == 0


def test_a_failed_node_is_re_executed_from_failure_on_another_worker(grid: Cluster):
    counter = grid.work / "reexec.count"
    nodes = {
        "make": node("echo", config={"output": {"rows": 42}}),
        "use": node("flaky", config={"counter_file": str(counter), "succeed_on_attempt": 2}),
    }
    grid.add(definition("cel_reexec", nodes, [("make", "use")], executor="celery", queue=REEXEC))
    first = grid.worker("first", REEXEC)
    done = grid.maestro("run", "cel_reexec")
    assert done.returncode != 0
    execution = grid.last_execution("cel_reexec")
    assert execution.status == "failed" and grid.nodes(execution.id)["use"].status == "failed"
    first.stop()  # the first worker is gone, and so is everything it had on its machine
    shutil.rmtree(grid.work / "workers" / "first")
    grid.worker("second", REEXEC)

    resumed = grid.maestro("resume", execution.id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert grid.execution(execution.id).status == "completed"
    first_run, second_run = grid.run_ids(execution.id)
    assert grid.workers_of(second_run) == {"use": ["second@test"]}  # make's output read from the first run's row
    use = grid.nodes(execution.id)["use"]
    assert use.status == "completed" and counter.read_text() == "2"
    assert grid.verify(first_run, second_run).returncode == 0


def test_a_killed_worker_hands_its_node_back_and_the_run_completes(grid: Cluster):
    grid.add(
        definition(
            "cel_kill",
            {"start": node("echo"), "long": node("sleep", config={"seconds": 12}), "end": node("echo")},
            [("start", "long"), ("long", "end")],
            executor="celery",
            queue=KILL,
        )
    )
    doomed = grid.worker("doomed", KILL)
    run = grid.run_async("run", "cel_kill")
    execution = wait_for(lambda: grid.last_execution("cel_kill"), 120, "the execution to be recorded")
    run_id = wait_for(lambda: (ids := grid.run_ids(execution.id)) and ids[0], 120, "the run to be mirrored")
    wait_for(lambda: grid.workers_of(run_id).get("long"), 120, "node long to start on the doomed worker")
    pool = descendants(doomed.pid)
    assert pool, "the worker's pool process runs the node"
    wait_for(lambda: grid.nodes(execution.id)["long"].status == "running", 60, "the mirror to show long running")

    os.kill(doomed.pid, signal.SIGKILL)  # the worker's main process only: its pool process must die with it
    wait_for(lambda: not any(pid_alive(p) for p in pool), 60, "the pool process to die with its worker")
    grid.worker("rescuer", KILL)

    execution = finished(grid, run, "cel_kill")
    assert execution.status == "completed", run.log.read_text()[-3000:]
    assert grid.workers_of(run_id)["long"] == ["doomed@test", "rescuer@test"]
    nodes = grid.nodes(execution.id)
    assert {n.status for n in nodes.values()} == {"completed"}
    assert grid.verify(run_id).returncode == 0


def test_a_worker_stopped_with_sigterm_finishes_its_node_first(grid: Cluster):
    grid.add(
        definition("cel_term", {"nap": node("sleep", config={"seconds": 5})}, executor="celery", queue=f"{KILL}_t")
    )
    worker = grid.worker("stopping", f"{KILL}_t")
    run = grid.run_async("run", "cel_term")
    execution = wait_for(lambda: grid.last_execution("cel_term"), 120, "the execution to be recorded")
    run_id = wait_for(lambda: (ids := grid.run_ids(execution.id)) and ids[0], 120, "the run to be mirrored")
    wait_for(lambda: grid.workers_of(run_id).get("nap"), 120, "node nap to start")
    worker.popen.send_signal(signal.SIGTERM)  # Celery's warm shutdown
    execution = finished(grid, run, "cel_term")
    assert execution.status == "completed"
    assert grid.workers_of(run_id)["nap"] == ["stopping@test"]  # finished where it started, not handed on
    wait_for(lambda: not worker.alive(), 60, "the worker to exit after its node")


def test_the_worker_refuses_a_bad_queue_name_clearly(grid: Cluster):
    done = subprocess_run(grid, "worker", "--queue", "no spaces")
    assert done.returncode == 2 and "queue 'no spaces'" in done.stderr and "Traceback" not in done.stderr


def subprocess_run(grid: Cluster, *args: str):
    import subprocess

    return subprocess.run(
        [str(BIN / "maestro"), *args], env=grid.env, capture_output=True, text=True, timeout=120, cwd=grid.work
    )


def test_worker_paths_stay_in_its_own_directory(grid: Cluster, main_workers):
    """The workers wrote their Dagster home under their own directory, never under the orchestrator's."""
    for name in ("main1", "main2", "heavy1"):
        assert (grid.work / "workers" / name / "home" / "dagster" / "dagster.yaml").exists()
        assert not list((grid.work / "workers" / name).glob("*.db")), "a worker needs no SQLite file"


def test_in_process_of_a_celery_workflow_is_a_clear_error(grid: Cluster):
    grid.add(definition("cel_inproc", {"a": node("echo")}, executor="celery", queue=f"{MAIN}_none"))
    done = grid.maestro("run", "cel_inproc", "--in-process")
    assert done.returncode != 0
    assert "no in-process mode: run it without --in-process" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
