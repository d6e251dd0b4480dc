"""The product beside its peers: the same four graphs of one trivial node function on maestro-dagster, plain
Dagster, Airflow 3 and Prefect 3.

    .venv/bin/python bench/bench_peers.py [--quick] [--write] [--reps N] [--shape S ...] [--multiprocess S ...]

Shapes (bench/peers/shapes.py): linear-20, linear-100, fanout-100 (1 -> 98 -> 1, a 98-input join), layered-500
(10 layers x 50, each node fed by two nodes of the layer before); ``--quick``: linear-20, fanout-20, layered-50, one
repetition. Every node runs ``shapes.node`` (what the product's ``noop`` executor returns) and receives its upstream
results. Variants, each measured in a fresh subprocess by a runner of bench/peers/ (in the peer's own virtual
environment for the peers) that runs the graph once as a warm-up and then once timed:

- product, mirrored: ``run_workflow(..., in_process=True)`` (``maestro run --in-process``), the in-run mirror on;
- product, job without the in-run mirror (``MAESTRO_MIRROR_IN_RUN=false``; ``run_workflow``'s final pass stays);
- product, multiprocess: ``run_workflow`` with the job's default executor (a process per step), mirrored; about a
  second per step, so the longest part of the run (``--multiprocess`` narrows it to the shapes it names);
- plain Dagster: ``execute_in_process`` of an equivalent hand-written job, on an instance of Dagster's default
  SQLite storage (the RSS target's reference), and on ``execute_in_process``'s default in-memory instance;
- Airflow 3: ``dag.test()`` of a TaskFlow DAG (SQLite metadata database);
- Prefect 3: ``task.submit`` on the default task runner, on ``ThreadPoolTaskRunner(<cores>)``, and plain calls of
  the tasks in the flow (its ephemeral server on SQLite); the best of the three is Prefect's figure.

A full run (3 repetitions) takes of the order of an hour and a half on 2 free cores: 36 measurements a
repetition, each with its warm-up, the multiprocess variant on layered-500 the longest (``--multiprocess linear-20
--multiprocess fanout-100`` shortens it by about a third). Per node = the timed run's wall / nodes; medians of the
repetitions, which are interleaved (each repetition runs every shape and every variant once, the variants' order
rotated). Peak RSS = ``ru_maxrss`` of the runner process (``os.wait4``: the largest of it and its waited-for
children, e.g. the step processes), median. The peers are installed on first use into bench/.peers/ (git-ignored)
with ``python -m venv`` and pip, pinned, niced; never into the project's environment. ``--write`` replaces the
section "Beside the peers" of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from _benchdoc import DOC, write_sections

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS = BENCH / "peers"
VENVS = BENCH / ".peers"
sys.path.insert(0, str(PEERS))

from shapes import FULL, QUICK, shape  # noqa: E402

SECTION = "Beside the peers"
PINS = {"airflow": "apache-airflow==3.3.2", "prefect": "prefect==3.9.1"}
AIRFLOW_DB = VENVS / "airflow-db" / "airflow.db"  # migrated once, copied for every measurement
TIMEOUT_S = 3600  # one measurement (a multiprocess layered-500 takes many minutes)
MULTIPROCESS_QUICK = ("linear-20",)
TARGET_AIRFLOW, TARGET_PREFECT, TARGET_RSS_MB = 0.5, 0.8, 10.0


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    venv: str | None  # None: the project's own environment
    runner: str
    arg: str
    setup: bool = False  # the runner's ``setup`` first, in its own process (the product: migrate, store the definition)

    def python(self) -> Path:
        return Path(sys.executable) if self.venv is None else VENVS / self.venv / "bin" / "python"


MIRRORED = Variant("mirrored", "**product, mirrored (in-process)**", None, "run_maestro.py", "mirrored", True)
UNMIRRORED = Variant("unmirrored", "product, job without in-run mirror", None, "run_maestro.py", "unmirrored", True)
MULTIPROCESS = Variant("multiprocess", "product, multiprocess executor", None, "run_maestro.py", "multiprocess", True)
DAGSTER = Variant("dagster", "plain Dagster, execute_in_process, SQLite", None, "run_dagster.py", "sqlite")
DAGSTER_MEMORY = Variant(
    "dagster-memory", "plain Dagster, execute_in_process, in memory", None, "run_dagster.py", "memory"
)
AIRFLOW = Variant("airflow", "Airflow 3, dag.test()", "airflow", "run_airflow.py", "dag_test")
PREFECT = (
    Variant("prefect-submit", "Prefect 3, submit (default runner)", "prefect", "run_prefect.py", "submit"),
    Variant("prefect-threadpool", "Prefect 3, ThreadPoolTaskRunner", "prefect", "run_prefect.py", "threadpool"),
    Variant("prefect-call", "Prefect 3, plain task calls", "prefect", "run_prefect.py", "call"),
)
VARIANTS = (MIRRORED, UNMIRRORED, MULTIPROCESS, DAGSTER, DAGSTER_MEMORY, AIRFLOW, *PREFECT)


class BenchError(Exception):
    """A set-up step or a measurement failed; the message says which and where its log is."""


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- the peers' environments ---------------------------------------------------------------------------------


def run_logged(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> None:
    with log.open("ab") as out:
        done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(cmd[:4])} ... exited {done.returncode}; see {log}")


def ensure_peer(name: str) -> None:
    """bench/.peers/<name>: a virtual environment with the pinned peer, created once (``nice``: it costs CPU)."""
    venv, marker = VENVS / name, VENVS / name / ".bench-installed"
    if marker.exists() and marker.read_text() == PINS[name]:
        return
    VENVS.mkdir(exist_ok=True)
    log = VENVS / f"{name}-install.log"
    progress(f"installing {PINS[name]} into {venv.relative_to(ROOT)} (once; log {log.relative_to(ROOT)})")
    python = sys._base_executable if hasattr(sys, "_base_executable") else sys.executable
    run_logged(["nice", "-n", "19", python, "-m", "venv", str(venv)], log)
    run_logged(["nice", "-n", "19", str(venv / "bin" / "python"), "-m", "pip", "install", "-q", PINS[name]], log)
    marker.write_text(PINS[name])


def ensure_airflow_db() -> None:
    """A migrated Airflow metadata database (SQLite), made once by ``airflow db migrate``."""
    home = AIRFLOW_DB.parent
    marker = home / ".bench-migrated"
    if AIRFLOW_DB.exists() and marker.exists() and marker.read_text() == PINS["airflow"]:
        return
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    progress("airflow db migrate (once)")
    run_logged(["nice", "-n", "19", str(VENVS / "airflow" / "bin" / "airflow"), "db", "migrate"], home / "log", env)
    marker.write_text(PINS["airflow"])


# ---- one measurement -----------------------------------------------------------------------------------------


@dataclass
class Measure:
    wall: float
    warmup: float | None
    nodes: int
    rss_mb: float

    @property
    def per_node_ms(self) -> float:
        return self.wall / self.nodes * 1000


def tail_of(log: Path) -> str:
    return "its last lines:\n" + "\n".join(log.read_text(errors="replace").strip().splitlines()[-15:])


def measure(variant: Variant, shape_name: str) -> Measure:
    """Run the variant's runner in a fresh process; its JSON line and its peak RSS (``os.wait4``)."""
    tmp = Path(tempfile.mkdtemp(prefix="maestro_bench_peers_"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAESTRO_", "DAGSTER_", "AIRFLOW", "PREFECT_"))}
    env.update(BENCH_TMP=str(tmp), BENCH_AIRFLOW_DB=str(AIRFLOW_DB), PYTHONDONTWRITEBYTECODE="1")
    out_path, log_path = tmp / "stdout", tmp / "stderr"
    try:
        runner = [str(variant.python()), str(PEERS / variant.runner)]
        if variant.setup:
            with log_path.open("wb") as err:
                done = subprocess.run([*runner, "setup", shape_name], stdout=err, stderr=err, env=env, cwd=tmp)
            if done.returncode != 0:
                raise BenchError(f"set-up of {variant.label} on {shape_name} failed: {tail_of(log_path)}")
        with out_path.open("wb") as out, log_path.open("ab") as err:
            cmd = [*runner, variant.arg, shape_name]
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=tmp)
        timer = threading.Timer(TIMEOUT_S, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        lines = out_path.read_text().strip().splitlines()
        if proc.returncode != 0 or not lines:
            raise BenchError(f"{variant.label} on {shape_name} exited {proc.returncode}: {tail_of(log_path)}")
        data = json.loads(lines[-1])
        return Measure(data["wall"], data["warmup"], data["nodes"], usage.ru_maxrss / 1024)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- the run -------------------------------------------------------------------------------------------------


@dataclass
class Results:
    shapes: list[str]
    plan: dict[str, list[Variant]]  # shape -> its variants
    runs: dict[tuple[str, str], list[Measure]] = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)

    def med(self, shape_name: str, key: str, what: str) -> float:
        values = [getattr(m, what) for m in self.runs.get((shape_name, key), []) if getattr(m, what) is not None]
        return statistics.median(values) if values else float("nan")

    def prefect_best(self, shape_name: str) -> Variant:
        return min(PREFECT, key=lambda v: self.med(shape_name, v.key, "per_node_ms"))


def run_all(shapes: list[str], multiprocess: set[str], reps: int) -> Results:
    plan = {s: [v for v in VARIANTS if v is not MULTIPROCESS or s in multiprocess] for s in shapes}
    res = Results(shapes, plan)
    res.loads.append(os.getloadavg()[0])
    for rep in range(reps):
        for shape_name in shapes:
            variants = plan[shape_name]
            k = rep % len(variants)
            for variant in variants[k:] + variants[:k]:  # rotated each repetition
                m = measure(variant, shape_name)
                res.runs.setdefault((shape_name, variant.key), []).append(m)
                progress(
                    f"  {rep + 1}/{reps} {shape_name} {variant.key}: {m.per_node_ms:.2f} ms/node "
                    f"({m.wall:.2f} s), {m.rss_mb:.0f} MB"
                )
        res.loads.append(os.getloadavg()[0])
    return res


# ---- the report ----------------------------------------------------------------------------------------------


def versions() -> str:
    def version_of(venv: str | None, module: str) -> str:
        python = Path(sys.executable) if venv is None else VENVS / venv / "bin" / "python"
        code = f"import importlib.metadata as m; print(m.version({module!r}))"
        done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
        return done.stdout.strip() or "?"

    return (
        f"Dagster {version_of(None, 'dagster')}, Airflow {version_of('airflow', 'apache-airflow')}, "
        f"Prefect {version_of('prefect', 'prefect')}"
    )


def machine() -> str:
    cpu = platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cores ({cpu}), {platform.system()}, Python {platform.python_version()}, {versions()}"


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def report(res: Results, reps: int, command: str) -> str:
    lines = [
        f"## {SECTION}",
        "",
        f"Reproduce: `{command}`. Machine: {machine()}. 1-minute load average before and after each repetition: "
        + ", ".join(f"{x:.1f}" for x in res.loads)
        + ". The machine has 2 cores; other work may have shared it (the load says how much): absolute times move "
        "with it, the ratios of interleaved repetitions much less.",
        "",
        'The same graphs of one trivial node function (it returns `{"status": "completed"}`, what the product\'s '
        "`noop` executor returns, and receives its upstream results) on each system. Each measurement is a fresh "
        "subprocess (the peers in their own virtual environments, bench/.peers/) that runs the graph once as a "
        "warm-up (imports, databases, servers, compiling) and then once timed, both checked (every node completed); "
        "the product's multiprocess variant has no warm-up (each step is a fresh process anyway). *per node* = the "
        f"timed run's wall / nodes. Medians of {reps} repetition(s), interleaved (each repetition runs every shape "
        "and variant once, the variants' order rotated). *peak RSS* = `ru_maxrss` of the subprocess (`os.wait4`: "
        "the largest of it and its waited-for children, not their sum: for the multiprocess variant its step "
        "processes, for Prefect its ephemeral server). Storage: SQLite everywhere (the product's Maestro file and "
        "Dagster's storage, the product's own event log storage class; Dagster's default SQLite storage for plain "
        "Dagster, or none in memory; Airflow's metadata database; Prefect's ephemeral server's). Console logs at "
        "WARNING everywhere. The product is measured as the working tree had it when the run started.",
        "",
        "| shape | variant | **per node ms** | timed run s | warm-up s | peak RSS MB |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for s in res.shapes:
        for v in res.plan[s]:
            warm = res.med(s, v.key, "warmup")
            lines.append(
                f"| {s} | {v.label} | **{res.med(s, v.key, 'per_node_ms'):.2f}** | {res.med(s, v.key, 'wall'):.2f} | "
                f"{'-' if warm != warm else f'{warm:.2f}'} | {res.med(s, v.key, 'rss_mb'):.0f} |"
            )
    lines += [
        "",
        "| shape | mirrored / Airflow | mirrored / Prefect's best (which) | mirrored / plain Dagster SQLite "
        "| mirrored / plain Dagster in memory | RSS mirrored - plain Dagster SQLite MB "
        "| RSS mirrored - plain Dagster in memory MB | RSS mirrored - job without mirror MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    worst_af, worst_pf, worst_rss = 0.0, 0.0, -1e9
    for s in res.shapes:
        mine, best = res.med(s, MIRRORED.key, "per_node_ms"), res.prefect_best(s)
        r_af = mine / res.med(s, AIRFLOW.key, "per_node_ms")
        r_pf = mine / res.med(s, best.key, "per_node_ms")
        rss = {v.key: res.med(s, MIRRORED.key, "rss_mb") - res.med(s, v.key, "rss_mb") for v in VARIANTS}
        worst_af, worst_pf, worst_rss = max(worst_af, r_af), max(worst_pf, r_pf), max(worst_rss, rss[DAGSTER.key])
        lines.append(
            f"| {s} | **{r_af:.2f}** | **{r_pf:.2f}** ({best.arg}) | "
            f"{mine / res.med(s, DAGSTER.key, 'per_node_ms'):.2f} | "
            f"{mine / res.med(s, DAGSTER_MEMORY.key, 'per_node_ms'):.2f} | **{rss[DAGSTER.key]:+.0f}** | "
            f"{rss[DAGSTER_MEMORY.key]:+.0f} | {rss[UNMIRRORED.key]:+.0f} |"
        )
    ok_af, ok_pf, ok_rss = worst_af <= TARGET_AIRFLOW, worst_pf <= TARGET_PREFECT, worst_rss <= TARGET_RSS_MB
    lines += [
        "",
        f"Targets, on every shape: product mirrored in-process per node <= {TARGET_AIRFLOW}x Airflow's (worst here "
        f"{worst_af:.2f}x: {verdict(ok_af)}); <= {TARGET_PREFECT}x Prefect's best (worst {worst_pf:.2f}x: "
        f"{verdict(ok_pf)}); peak RSS mirrored <= plain Dagster + {TARGET_RSS_MB:.0f} MB (worst {worst_rss:+.0f} MB: "
        f"{verdict(ok_rss)}).",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, 1 repetition: a check that it works")
    parser.add_argument("--write", action="store_true", help=f"write the section '{SECTION}' of docs/benchmarks.md")
    parser.add_argument("--reps", type=int, help="repetitions (default 3; --quick 1)")
    parser.add_argument("--shape", action="append", help="only this shape (repeatable), e.g. linear-20")
    parser.add_argument(
        "--multiprocess", action="append", help="only these shapes for the multiprocess variant (default: all)"
    )
    args = parser.parse_args()
    reps = args.reps or (1 if args.quick else 3)
    shapes = args.shape or list(QUICK if args.quick else FULL)
    # the multiprocess variant: on the shapes named, else on every shape (--quick: linear-20 only)
    multiprocess = set(args.multiprocess or (set(MULTIPROCESS_QUICK) & set(shapes) if args.quick else shapes))
    try:
        for s in itertools.chain(shapes, multiprocess):
            shape(s)
        if multiprocess - set(shapes):
            raise ValueError(f"--multiprocess {' '.join(sorted(multiprocess - set(shapes)))}: not among the shapes run")
        for name in PINS:
            ensure_peer(name)
        ensure_airflow_db()
        res = run_all(shapes, multiprocess, reps)
    except (BenchError, ValueError) as exc:
        print(f"bench_peers: {exc}", file=sys.stderr)
        return 1
    flags = ["--quick"] if args.quick else []
    flags += [f"--reps {args.reps}"] if args.reps else []
    flags += [f"--shape {s}" for s in args.shape or []] + [f"--multiprocess {s}" for s in args.multiprocess or []]
    body = report(res, reps, " ".join([".venv/bin/python bench/bench_peers.py", *flags, "--write"]))
    print(body)
    if args.write:
        write_sections({SECTION: body})
        print(f"wrote {SECTION!r} into {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
