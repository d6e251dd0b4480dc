"""The run path users take: `maestro run` with the default (multiprocess) executor, forkserver vs spawn.

    .venv/bin/python bench/bench_run_path.py [--quick] [--write] [--reps N]

In a temporary MAESTRO_HOME (SQLite, the embedded default), after `maestro db upgrade` and `maestro defs sync` of
`workflow_defs/sdlc_parallel.yaml` and a linear-10 of no-op nodes, each measured as the whole command, as a user
runs it (a subprocess of the venv's `maestro`, wall time and the CPU of it and its children):

- `maestro run sdlc_parallel` (6 nodes, the demo) with steps forked from the forkserver (the default) and with
  `MAESTRO_STEP_START_METHOD=spawn` (Dagster's default: a new interpreter per step);
- `maestro run linear-10` the same two ways, and `maestro run linear-10 --in-process` (no step processes): the
  per-step overhead of the multiprocess executor is (multiprocess - in-process) / 10 (a chain: no step runs beside
  another, so every step's start is on the critical path).

Variants interleaved (order rotated every repetition), medians of ``--reps`` (default 5; ``--quick`` 1), after one
warm-up round that is dropped. ``--write`` replaces the section "Run path: maestro run" of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _benchdoc import DOC, write_sections

ROOT = Path(__file__).resolve().parents[1]
MAESTRO = str(Path(sys.executable).parent / "maestro")
SECTION = "Run path: maestro run"
SCRUB_PREFIXES = ("MAESTRO_", "POSTGRES_", "DAGSTER_")
LINEAR = 10
TARGET_STEP, TARGET_SDLC = 0.5, 6.0
VARIANTS = (
    ("sdlc_parallel, forkserver", ["run", "sdlc_parallel", "--requirement", "todo app"], "forkserver"),
    ("sdlc_parallel, spawn", ["run", "sdlc_parallel", "--requirement", "todo app"], "spawn"),
    (f"linear-{LINEAR}, forkserver", ["run", f"linear-{LINEAR}"], "forkserver"),
    (f"linear-{LINEAR}, spawn", ["run", f"linear-{LINEAR}"], "spawn"),
    (f"linear-{LINEAR}, in-process", ["run", f"linear-{LINEAR}", "--in-process"], "forkserver"),
)


def linear(n: int) -> dict:
    ids = [f"n{i:02d}" for i in range(n)]
    return {
        "id": f"linear-{n}",
        "nodes": {i: {"executor": "noop"} for i in ids},
        "edges": [{"source": a, "target": b} for a, b in itertools.pairwise(ids)],
    }


def environment(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB_PREFIXES)}
    defs = tmp / "defs"
    defs.mkdir()
    shutil.copy(ROOT / "workflow_defs" / "sdlc_parallel.yaml", defs / "sdlc_parallel.yaml")
    (defs / f"linear-{LINEAR}.yaml").write_text(yaml.safe_dump(linear(LINEAR), sort_keys=False))
    env.update(MAESTRO_HOME=str(tmp / "home"), MAESTRO_DEFS_DIR=str(defs), DAGSTER_DISABLE_TELEMETRY="yes")
    return env


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system, the command and its children) of one command; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([MAESTRO, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert done.returncode == 0, f"maestro {' '.join(args)} exited {done.returncode}: {done.stdout[-2000:]}"
    assert "status     completed" in done.stdout, done.stdout[-2000:]
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--reps", type=int)
    args = parser.parse_args()
    reps = args.reps or (1 if args.quick else 5)
    tmp = Path(tempfile.mkdtemp(prefix="maestro_bench_run_path_"))
    results: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in VARIANTS}
    try:
        env = environment(tmp)
        for setup in (["db", "upgrade"], ["defs", "sync"]):
            subprocess.run([MAESTRO, *setup], cwd=ROOT, env=env, check=True, capture_output=True)
        load_before = os.getloadavg()[0]
        for rep in range(reps + 1):  # round 0 is the warm-up
            order = VARIANTS[rep % len(VARIANTS) :] + VARIANTS[: rep % len(VARIANTS)]
            for name, command, method in order:
                wall, cpu = timed(command, {**env, "MAESTRO_STEP_START_METHOD": method})
                print(f"  {'warm-up' if rep == 0 else rep}/{reps} {name}: {wall:.2f} s wall", file=sys.stderr)
                if rep:
                    results[name].append((wall, cpu))
        load_after = os.getloadavg()[0]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def med(name: str, i: int) -> float:
        return statistics.median(r[i] for r in results[name])

    step = {
        method: (med(f"linear-{LINEAR}, {method}", 0) - med(f"linear-{LINEAR}, in-process", 0)) / LINEAR
        for method in ("forkserver", "spawn")
    }
    sdlc = med("sdlc_parallel, forkserver", 0)
    command = " ".join([".venv/bin/python bench/bench_run_path.py", *(["--quick"] if args.quick else []), "--write"])
    lines = [
        f"## {SECTION}",
        "",
        f"Reproduce: `{command}`. Machine: {os.cpu_count()} cores, {platform.system()}, Python "
        f"{platform.python_version()}; SQLite (the embedded default), a fresh temporary MAESTRO_HOME. Each figure is "
        "the whole command as a user runs it (`maestro ...` in a subprocess: interpreter start, imports, the run, the "
        f"printed execution); medians of {reps} repetition(s), variants interleaved (order rotated every repetition) "
        "after a warm-up round that is dropped. *CPU*: user + system time of the command and the children it waited "
        "for: the spawned step processes; not the forkserver and the steps forked from it, which end after the command "
        "(so the forkserver rows undercount CPU; compare their wall times). *forkserver*: the default "
        "(`step_processes.py`: steps forked from a server that preloaded the run process's modules); *spawn*: "
        "`MAESTRO_STEP_START_METHOD=spawn`, Dagster's "
        "own default (a new interpreter per step). Every run is checked: exit 0, execution `completed`.",
        "",
        "| command | start method | wall s | CPU s |",
        "|---|---|---:|---:|",
    ]
    for name, command_args, _ in VARIANTS:
        what, method = name.split(", ")
        lines.append(
            f"| `maestro {' '.join(command_args[:2])}{' --in-process' * (method == 'in-process')}` ({what})"
            f" | {method} | {med(name, 0):.2f} | {med(name, 1):.2f} |"
        )
    lines += [
        "",
        f"- Per-step overhead of the multiprocess executor, (linear-{LINEAR} multiprocess - in-process) / {LINEAR}: "
        f"**{step['forkserver']:.2f} s** with the forkserver, {step['spawn']:.2f} s with spawn "
        f"({step['spawn'] / max(step['forkserver'], 1e-9):.1f}x). Target <= {TARGET_STEP} s: "
        f"{'met' if step['forkserver'] <= TARGET_STEP else '**not met**'}.",
        f"- `maestro run sdlc_parallel`: **{sdlc:.2f} s** wall with the forkserver, "
        f"{med('sdlc_parallel, spawn', 0):.2f} s with spawn. Target <= {TARGET_SDLC} s on a quiet machine: "
        f"{'met' if sdlc <= TARGET_SDLC else '**not met**'}.",
        f"- 1-minute load average before/after: {load_before:.1f}/{load_after:.1f} (2 cores).",
    ]
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_sections({SECTION: body})
        print(f"wrote {SECTION!r} into {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
