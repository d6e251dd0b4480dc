"""Benchmark of the lazy code location with 1,000 stored definitions (10 no-op nodes each), and of definitions at
scale (``maestro defs sync`` and the location's load with 1,000 and 10,000 definitions, see ``bench/_defs_scale.py``).

    .venv/bin/python bench/bench_compile.py [--write] [--reps N] [--definitions N] [--sizes 1000,10000]
        [--scale-reps N] [--only-scale]

In one run, in a temporary MAESTRO_HOME (SQLite Maestro database, SQLite Dagster instance), removed afterwards:

(a) list the job names through ``MaestroRepositoryData.get_job_names()`` (sync on load off);
(b) compile one job: ``get_job(name)`` on a fresh ``MaestroRepositoryData`` (index query + row + ``build_job``);
(c) start one run as a run worker does: wall time of ``dagster job execute -m maestro_dagster.definitions -a maestro
    -j <one of them> -c cfg.yaml`` (execution in_process), against ``python -c "import dagster"``; the overhead is
    the difference; the run's own RUN_START/end timestamps split it into start-up, run and shutdown;
(d) an eager build of all jobs (what a non-lazy repository would do), and ``get_all_jobs()`` of the lazy one.

(e) definitions at scale, per size in its own database: the first sync of N files, unchanged re-syncs, and the
    location's load as a code server does it (sync on load included), beside ``python -c "import dagster"``.

Figures are medians of several repetitions; subprocess variants are interleaved. ``--write`` replaces the sections
"## Compile: 1,000 definitions" and "## Definitions at scale: sync and location load" of docs/benchmarks.md (only the
latter with ``--only-scale``) and keeps every other section. A quick check: ``--reps 1 --definitions 50 --sizes 20,60
--scale-reps 1``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _defs_scale
from _benchdoc import DOC, write_sections

ROOT = Path(__file__).resolve().parents[1]
SECTION = "Compile: 1,000 definitions"
COMMAND = ".venv/bin/python bench/bench_compile.py --write"
PYTHON = sys.executable
DAGSTER_CLI = str(Path(sys.executable).parent / "dagster")
_SCRUB_PREFIXES = ("MAESTRO_", "POSTGRES_", "DAGSTER_")
_SCRUB_NAMES = ("USE_SQLITE", "SQLITE_PATH", "DB_POOL_SIZE", "DB_MAX_OVERFLOW", "DB_POOL_TIMEOUT", "DB_POOL_RECYCLE")


def _configure_env(home: Path) -> dict[str, str]:
    """A clean environment for this process and its children: embedded SQLite under ``home``, no sync."""
    for name in list(os.environ):
        if name.startswith(_SCRUB_PREFIXES) or name in _SCRUB_NAMES:
            del os.environ[name]
    os.environ.update(
        MAESTRO_HOME=str(home),
        MAESTRO_SYNC_DEFS_ON_LOAD="false",
        DAGSTER_HOME=str(home / "dagster"),
        DAGSTER_DISABLE_TELEMETRY="yes",
    )
    (home / "dagster").mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster" / "dagster.yaml")
    return dict(os.environ)


def definition(index: int, nodes: int = 10) -> dict[str, Any]:
    """``nodes`` no-op nodes; each node after the first depends on one or two earlier nodes."""
    ids = [f"n{i}" for i in range(nodes)]
    edges = []
    for i in range(1, nodes):
        edges.append({"source": ids[(i - 1) // 2], "target": ids[i]})
        if i >= 3 and i % 3 == 0:
            edges.append({"source": ids[i - 1], "target": ids[i]})
    return {
        "id": f"bench_wf_{index:04d}",
        "name": f"Benchmark workflow {index}",
        "workflow_type": "custom",
        "nodes": {n: {"executor": "noop", "config": {"output": {"index": index, "node": n}}} for n in ids},
        "edges": edges,
    }


def timed(fn: Callable[[], Any], reps: int) -> list[tuple[float, float]]:
    """``reps`` samples of (wall seconds, CPU seconds of this process) of ``fn()``."""
    samples = []
    for _ in range(reps):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        samples.append((time.perf_counter() - wall, time.process_time() - cpu))
    return samples


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def medians(samples: list[tuple[float, ...]]) -> tuple[float, ...]:
    return tuple(statistics.median(sample[i] for sample in samples) for i in range(len(samples[0])))


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.2f} s"


def run_benchmark(args: argparse.Namespace, home: Path, progress: Callable[[str], None]) -> dict[str, Any]:
    env = _configure_env(home)
    # Imported only now: the settings are read from the environment configured above.
    from dagster import DagsterInstance

    from maestro_dagster.compiler import build_job
    from maestro_dagster.db import migrate
    from maestro_dagster.db.models import WorkflowDefinition
    from maestro_dagster.db.session import dispose_engines, get_db
    from maestro_dagster.definitions import MaestroRepositoryData
    from maestro_dagster.defs_store import load_spec, store_definition
    from maestro_dagster.names import job_name
    from maestro_dagster.settings import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    migrate.upgrade(settings)
    results: dict[str, Any] = {"definitions": args.definitions, "nodes": 10, "reps": args.reps, "rows": {}}
    rows: dict[str, list[tuple[float, ...]]] = results["rows"]
    middle = definition(args.definitions // 2)["id"]

    progress(f"storing {args.definitions} definitions ...")

    def store() -> None:
        with get_db(settings, immediate=True) as session:
            for index in range(args.definitions):
                report, _ = store_definition(session, definition(index), settings, source="bench")
                assert report.ok, report.summary()

    rows["store"] = timed(store, 1)
    names = MaestroRepositoryData().get_job_names()  # warm-up: engine, imports
    assert len(names) == args.definitions, len(names)

    progress("(a) listing job names, (b) compiling one job ...")
    many = args.reps * 4
    rows["list"] = timed(lambda: MaestroRepositoryData().get_job_names(), many)
    picks = iter(names[i * 37 % len(names)] for i in range(many))
    rows["compile_one"] = timed(lambda: MaestroRepositoryData().get_job(next(picks)), many)
    with get_db() as session:
        spec = load_spec(session.get(WorkflowDefinition, middle))
    rows["build_job"] = timed(lambda: build_job(spec, version=1), many)

    progress("(d) eager build of every job ...")

    def eager() -> None:
        with get_db() as session:
            found = session.query(WorkflowDefinition).filter(WorkflowDefinition.is_valid.is_(True)).all()
            pairs = [(load_spec(row), row.version) for row in found]
        assert len([build_job(s, version=v) for s, v in pairs]) == args.definitions

    rows["eager"], rows["get_all_jobs"] = [], []
    for _ in range(max(1, args.reps // 2)):  # interleaved, so both see the same machine load
        rows["eager"] += timed(eager, 1)
        rows["get_all_jobs"] += timed(lambda: MaestroRepositoryData().get_all_jobs(), 1)

    progress("(c) dagster job execute vs import dagster ...")
    target = results["target"] = job_name(middle)
    config = home / "run_config.yaml"
    config.write_text("initial_context: {}\nexecution:\n  config:\n    in_process: {}\n")
    execute = [DAGSTER_CLI, "job", "execute", "-m", "maestro_dagster.definitions", "-a", "maestro", "-j", target]
    execute += ["-c", str(config)]
    variants: dict[str, tuple[list[str], dict[str, str]]] = {
        "import dagster": ([PYTHON, "-c", "import dagster"], env),
        "import maestro_dagster.definitions": ([PYTHON, "-c", "import maestro_dagster.definitions"], env),
        "load + compile": (
            [PYTHON, "-c", f"from maestro_dagster.definitions import maestro; maestro.get_job({target!r})"],
            env,
        ),
        "execute": (execute, env),
        "execute, no in-run mirror": (execute, {**env, "MAESTRO_MIRROR_IN_RUN": "false"}),
    }
    for name in variants:
        rows[name] = []
    instance = DagsterInstance.from_config(str(home / "dagster"))
    load_before = os.getloadavg()[0]
    for rep in range(args.reps + 1):  # the first round warms caches (pyc, instance storage) and is dropped
        for name, (argv, variant_env) in variants.items():
            t0, cpu0 = time.time(), _children_cpu()
            started = time.perf_counter()
            done = subprocess.run(argv, cwd=ROOT, env=variant_env, capture_output=True, text=True, timeout=300)
            wall, cpu = time.perf_counter() - started, _children_cpu() - cpu0
            if done.returncode != 0:
                raise RuntimeError(f"{name} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
            if rep == 0:
                continue
            if name.startswith("execute"):
                record = instance.get_run_records(limit=1)[0]
                assert record.dagster_run.job_name == target and record.dagster_run.is_success
                start, end = record.start_time, record.end_time
                rows[name].append((wall, cpu, start - t0, end - start, t0 + wall - end))
            else:
                rows[name].append((wall, cpu))
        progress(f"  round {rep}: " + ", ".join(f"{n} {rows[n][-1][0]:.2f}s" for n in variants if rows[n]))
    instance.dispose()
    results["load"] = (load_before, os.getloadavg()[0])
    dispose_engines()
    return results


def machine() -> str:
    cpus = os.cpu_count() or 0
    return (
        f"{platform.system()} {platform.machine()}, {cpus} CPU(s), Python {platform.python_version()}, "
        f"Dagster {__import__('dagster').__version__}, SQLite {__import__('sqlite3').sqlite_version}"
    )


def to_markdown(r: dict[str, Any]) -> str:
    rows = r["rows"]
    med = {name: medians(samples) for name, samples in rows.items()}
    n = r["definitions"]
    imp_wall, imp_cpu = med["import dagster"]

    def spread(name: str) -> str:
        walls = [sample[0] for sample in rows[name]]
        return f"wall range {_fmt(min(walls))} to {_fmt(max(walls))}"

    def over(name: str) -> str:
        return f"+{_fmt(med[name][0] - imp_wall)} wall, +{_fmt(med[name][1] - imp_cpu)} CPU over (c0)"

    table = [
        ("setup: store the definitions (`store_definition`, one transaction)", "store", f"{n:,} definitions"),
        ("(a) list job names: `MaestroRepositoryData().get_job_names()`", "list", "compiles nothing"),
        (
            "(b) compile one job: `get_job(name)` on a fresh `MaestroRepositoryData`",
            "compile_one",
            "index + row + build",
        ),
        ("(b') of which `build_job` alone (10 nodes)", "build_job", ""),
        ('(c0) `python -c "import dagster"`', "import dagster", f"baseline; {spread('import dagster')}"),
        (
            '(c1) `python -c "import maestro_dagster.definitions"`',
            "import maestro_dagster.definitions",
            f"{over('import maestro_dagster.definitions')}; {spread('import maestro_dagster.definitions')}",
        ),
        (
            f"(c2) `python -c \"from maestro_dagster.definitions import maestro; maestro.get_job('{r['target']}')\"`",
            "load + compile",
            f"{over('load + compile')}: Maestro's start-up cost in a run worker; {spread('load + compile')}",
        ),
    ]
    labels = {
        "execute": "(c) `dagster job execute` (in_process)",
        "execute, no in-run mirror": "(c') same, `MAESTRO_MIRROR_IN_RUN=false`",
    }
    for name, label in labels.items():
        _, _, start, run, stop = med[name]
        notes = (
            f"**{over(name)}**; process start to RUN_START {_fmt(start)}, run {_fmt(run)}, run end to exit "
            f"{_fmt(stop)}; {spread(name)}"
        )
        table.append((label, name, notes))
    table += [
        (f"(d) eager build of all {n:,} jobs (one query + `build_job` each)", "eager", ""),
        ("(d') lazy repository `get_all_jobs()` (what a code server's snapshot pays)", "get_all_jobs", ""),
    ]
    start_overhead = med["execute, no in-run mirror"][2] - imp_wall
    start_cpu = med["load + compile"][1] - imp_cpu
    lines = [
        f"## {SECTION}",
        "",
        f"Measured by `{COMMAND}` in one run on this machine ({machine()}); {n:,} stored definitions of "
        f"{r['nodes']} no-op nodes each in a temporary SQLite Maestro database and Dagster instance. Medians of "
        f"{r['reps']} repetitions for subprocesses (variants interleaved, after one warm-up round that is dropped), "
        f"{r['reps'] * 4} for (a) and (b), {max(1, r['reps'] // 2)} for (d) and (d') (interleaved). CPU is the "
        "user+system time of the process doing the work (the subprocess for (c*)); it is much less sensitive to "
        "other load on the machine than wall time.",
        "",
        "| measurement | wall (median) | CPU (median) | notes |",
        "|---|---:|---:|---|",
        *[f"| {label} | {_fmt(med[key][0])} | {_fmt(med[key][1])} | {notes} |" for label, key, notes in table],
        "",
        f"- Listing {n:,} job names costs {_fmt(med['list'][0])} and compiling the one job a run worker needs "
        f"{_fmt(med['compile_one'][0])}; an eager repository would build every job first: {_fmt(med['eager'][0])} "
        f"({med['eager'][0] / max(med['compile_one'][0], 1e-9):,.0f}x one job).",
        f"- Maestro's start-up in a run worker beyond Dagster's own import, (c2) - (c0): "
        f"{_fmt(start_cpu)} CPU ({_fmt(med['load + compile'][0] - imp_wall)} wall). Target (compile-one + start "
        f"overhead <= 1 s beyond Dagster's import): {'met' if start_cpu <= 1.0 else 'NOT met'} (judged on CPU, "
        f"which other load on the machine does not inflate). Nearly all of it is importing Maestro's modules, "
        f"(c1) - (c0); compiling the job is (b). In `dagster job execute` (no in-run mirror), process start to "
        f"RUN_START took {_fmt(start_overhead)} wall beyond (c0), which also counts Dagster's CLI, instance and "
        f"run creation. The whole command, including the 10-step run and shutdown, costs {over('execute')} with "
        "the default settings.",
        f"- The machine was shared with other work during the run (1-minute load average {r['load'][0]:.1f} before "
        f"and {r['load'][1]:.1f} after the subprocess measurements, on {os.cpu_count()} CPUs): wall times move by the "
        "ranges shown, so wall differences smaller than those ranges (e.g. between (c) and (c')) are noise.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite the sections '{SECTION}' and "
                        f"'{_defs_scale.SECTION}' of {DOC.name}")  # fmt: skip
    parser.add_argument("--reps", type=int, default=7, help="repetitions of each subprocess variant (default 7)")
    parser.add_argument("--definitions", type=int, default=1000, help="stored definitions (default 1000)")
    parser.add_argument("--sizes", default="1000,10000", help="definition counts of (e), comma-separated")
    parser.add_argument("--scale-reps", type=int, default=3, help="location loads per size in (e) (default 3)")
    parser.add_argument("--only-scale", action="store_true", help="measure (e) only")
    args = parser.parse_args()
    sizes = sorted(int(n) for n in args.sizes.split(","))

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    saved_env = dict(os.environ)
    tmp = Path(tempfile.mkdtemp(prefix="maestro-bench-compile-"))
    sections: dict[str, str] = {}
    try:
        if not args.only_scale:
            sections[SECTION] = to_markdown(run_benchmark(args, tmp / "home", progress))
        else:
            _configure_env(tmp / "home")
        scale = _defs_scale.run(tmp, sizes, args.scale_reps, dict(os.environ), definition, progress)
        command = COMMAND + (" --only-scale" if args.only_scale else "")
        sections[_defs_scale.SECTION] = _defs_scale.to_markdown(scale, command, machine())
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n\n".join(sections.values()))
    if args.write:
        write_sections(sections)
        progress(f"wrote the section(s) {', '.join(repr(t) for t in sections)} of {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
