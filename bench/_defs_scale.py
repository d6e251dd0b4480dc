"""Definitions at scale, for ``bench/bench_compile.py``: ``maestro defs sync`` of N files (first and unchanged) and
the code location's load with N definitions, as a code server loads it, beside ``python -c "import dagster"``.

For each size, in its own temporary SQLite Maestro database: N definition files (10 no-op nodes each) in a
directory; the first ``sync_directory`` (once: it is the first), then unchanged re-syncs, sizes interleaved. The load
is a subprocess doing what Dagster's gRPC code server does for a location (``dagster/_grpc/server.py``): import
``maestro_dagster.definitions``, ``load_all_definitions()`` of the repository (sync on load included: the files are
unchanged), then ``RepositorySnap.from_def(repository, defer_snapshots=True)`` serialized (the location's
``ExternalRepository`` reply: job refs, each with its snapshot id). It reports its own split (import, sync on load,
job builds, snapshot); variants are interleaved after a warm-up round that is dropped.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

SECTION = "Definitions at scale: sync and location load"
PROBE = """\
import json, time
t0 = time.perf_counter()
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster_shared.serdes import serialize_value
from maestro_dagster import defs_store
t1 = time.perf_counter()
from maestro_dagster.definitions import maestro
t2 = time.perf_counter()
spent = {"sync": 0.0}
real_sync = defs_store.sync_directory
def timed_sync(*args, **kwargs):
    started = time.perf_counter()
    try:
        return real_sync(*args, **kwargs)
    finally:
        spent["sync"] += time.perf_counter() - started
import maestro_dagster.definitions as location
location.sync_directory = timed_sync
maestro.load_all_definitions()
t3 = time.perf_counter()
reply = serialize_value(RepositorySnap.from_def(maestro, defer_snapshots=True))
t4 = time.perf_counter()
from maestro_dagster.assets import RESERVED_JOB_NAMES
jobs = len([job for job in maestro.get_all_jobs() if job.name not in RESERVED_JOB_NAMES])  # the workflows' jobs
print(json.dumps({"imports": t1 - t0, "definitions_import": t2 - t1, "sync": spent["sync"],
                  "load_all": t3 - t2 - spent["sync"], "snapshot": t4 - t3, "jobs": jobs, "reply_bytes": len(reply)}))
"""


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _write_files(directory: Path, count: int, definition: Callable[[int], dict[str, Any]]) -> None:
    directory.mkdir(parents=True)
    for index in range(count):
        text = yaml.safe_dump(definition(index), sort_keys=False)
        (directory / f"wf_{index:05d}.yaml").write_text(text.replace("bench_wf_", "scale_wf_"))


def run(
    base: Path, sizes: list[int], reps: int, env: dict[str, str], definition: Callable[[int], dict[str, Any]],
    progress: Callable[[str], None],
) -> dict[str, Any]:  # fmt: skip
    """Measure every size; ``env`` is the bench's clean environment (its MAESTRO_HOME is replaced per size)."""
    from maestro_dagster.db import migrate
    from maestro_dagster.db.session import get_db
    from maestro_dagster.defs_store import sync_directory
    from maestro_dagster.settings import Settings

    homes: dict[int, tuple[Settings, Path, dict[str, str]]] = {}
    first: dict[int, tuple[float, float]] = {}
    for size in sizes:
        home = base / f"scale-{size}"
        defs = home / "defs"
        _write_files(defs, size, definition)
        size_env = {
            **env,
            "MAESTRO_HOME": str(home),
            "MAESTRO_DEFS_DIR": str(defs),
            "MAESTRO_SYNC_DEFS_ON_LOAD": "true",
        }
        os.environ.update(size_env)
        settings = Settings()
        migrate.upgrade(settings)
        homes[size] = (settings, defs, size_env)
        progress(f"first sync of {size:,} files ...")
        wall, cpu = time.perf_counter(), time.process_time()
        with get_db(settings, immediate=True) as session:
            results = sync_directory(session, defs, settings)
        first[size] = (time.perf_counter() - wall, time.process_time() - cpu)
        assert len(results) == size and all(r.valid and r.changed for r in results)
    os.environ.update(env)

    resync: dict[int, list[tuple[float, float]]] = {size: [] for size in sizes}
    for _ in range(max(reps * 2, 3)):  # interleaved
        for size, (settings, defs, _) in homes.items():
            wall, cpu = time.perf_counter(), time.process_time()
            with get_db(settings, immediate=True) as session:
                results = sync_directory(session, defs, settings)
            resync[size].append((time.perf_counter() - wall, time.process_time() - cpu))
            assert len(results) == size and not any(r.changed for r in results)

    variants: dict[str, tuple[list[str], dict[str, str]]] = {
        "import dagster": ([sys.executable, "-c", "import dagster"], env)
    }
    for size, (_, _, size_env) in homes.items():
        variants[f"load {size}"] = ([sys.executable, "-c", PROBE], size_env)
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    load_before = os.getloadavg()[0]
    for rep in range(reps + 1):  # the first round only warms caches (pyc), on the smallest size, and is dropped
        for name, (argv, variant_env) in variants.items():
            if rep == 0 and name not in ("import dagster", f"load {sizes[0]}"):
                continue
            cpu0, started = _children_cpu(), time.perf_counter()
            done = subprocess.run(argv, env=variant_env, capture_output=True, text=True, timeout=3600)
            wall, cpu = time.perf_counter() - started, _children_cpu() - cpu0
            if done.returncode != 0:
                raise RuntimeError(f"{name} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
            split = json.loads(done.stdout.strip().splitlines()[-1]) if name.startswith("load") else {}
            if split:
                assert split["jobs"] == int(name.split()[1]), split
            if rep:
                samples[name].append({"wall": wall, "cpu": cpu, **split})
                progress(f"  round {rep}: {name} {wall:.2f}s wall, {cpu:.2f}s CPU")
    return {
        "sizes": sizes,
        "reps": reps,
        "first": first,
        "resync": resync,
        "loads": samples,
        "load": (load_before, os.getloadavg()[0]),
    }


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.2f} s"


def to_markdown(r: dict[str, Any], command: str, machine: str) -> str:
    sizes, reps = r["sizes"], r["reps"]

    def med(values: list[float]) -> float:
        return statistics.median(values)

    loads = {name: {key: med([s[key] for s in rows]) for key in rows[0]} for name, rows in r["loads"].items()}
    base = loads["import dagster"]
    lines = [
        f"## {SECTION}",
        "",
        f"Measured by `{command}` in one run on this machine ({machine}); definitions of 10 no-op nodes each, one file "
        "per definition, a temporary SQLite Maestro database per size. The first sync is measured once (it is the "
        f"first); re-syncs are medians of {len(r['resync'][sizes[0]])} repetitions, sizes interleaved; the location "
        f"loads are medians of {reps} subprocess runs, variants interleaved after a dropped warm-up round. CPU is the "
        "user+system time of the process doing the work.",
        "",
        "| measurement | " + " | ".join(f"{n:,} definitions" for n in sizes) + " |",
        "|---|" + "---:|" * len(sizes),
        "| first `sync_directory` (parse, validate, store every file), wall / CPU | "
        + " | ".join(f"{_fmt(r['first'][n][0])} / {_fmt(r['first'][n][1])}" for n in sizes)
        + " |",
        "| unchanged re-sync (read + hash every file, one query, nothing parsed), wall / CPU | "
        + " | ".join(
            f"{_fmt(med([s[0] for s in r['resync'][n]]))} / {_fmt(med([s[1] for s in r['resync'][n]]))}" for n in sizes
        )
        + " |",
        "| ratio first / unchanged (CPU) | "
        + " | ".join(f"{r['first'][n][1] / max(med([s[1] for s in r['resync'][n]]), 1e-9):,.0f}x" for n in sizes)
        + " |",
        f'| location load (subprocess), wall / CPU; `python -c "import dagster"`: {_fmt(base["wall"])} / '
        f"{_fmt(base['cpu'])} | "
        + " | ".join(f"{_fmt(loads[f'load {n}']['wall'])} / {_fmt(loads[f'load {n}']['cpu'])}" for n in sizes)
        + " |",
        "| **location load beyond `import dagster`** (CPU) | "
        + " | ".join(f"**+{_fmt(loads[f'load {n}']['cpu'] - base['cpu'])}**" for n in sizes)
        + " |",
        "| of which (wall, inside the process): imports, Dagster's included | "
        + " | ".join(f"{_fmt(loads[f'load {n}']['imports'] + loads[f'load {n}']['definitions_import'])}" for n in sizes)
        + " |",
        "| of which (wall): sync on load (unchanged files) | "
        + " | ".join(_fmt(loads[f"load {n}"]["sync"]) for n in sizes)
        + " |",
        "| of which (wall): `load_all_definitions()`: index, rows, `build_job` + job snapshot of every job | "
        + " | ".join(_fmt(loads[f"load {n}"]["load_all"]) for n in sizes)
        + " |",
        "| of which (wall): `RepositorySnap.from_def(..., defer_snapshots=True)` serialized (the location's reply) | "
        + " | ".join(f"{_fmt(loads[f'load {n}']['snapshot'])}" for n in sizes)
        + " |",
        "| per job: `load_all_definitions()` / reply (wall) | "
        + " | ".join(
            f"{_fmt(loads[f'load {n}']['load_all'] / n)} / {_fmt(loads[f'load {n}']['snapshot'] / n)}" for n in sizes
        )
        + " |",
        "",
    ]
    small = 1000 if 1000 in sizes else sizes[0]
    large = sizes[-1]
    resync_small = med([s[1] for s in r["resync"][small]])
    beyond = loads[f"load {small}"]["cpu"] - base["cpu"]
    lines += [
        f"- Target: an unchanged re-sync of 1,000 files <= 0.3 s: {'met' if resync_small <= 0.3 else 'NOT met'} "
        f"({_fmt(resync_small)} CPU for {small:,}; {_fmt(med([s[1] for s in r['resync'][large]]))} for {large:,}).",
        f"- Target: loading the location with 1,000 definitions <= 1 s beyond Dagster's import, sync on load "
        f"included: {'met' if beyond <= 1.0 else 'NOT met'} (+{_fmt(beyond)} CPU for {small:,}). Even with deferred "
        "snapshots (what a gRPC code location asks for) Dagster needs every job's snapshot id (`JobRefSnap`), i.e. "
        "every job built (`build_job`, then Dagster's job snapshot) and its whole snapshot serialized and hashed "
        "(`create_snapshot_id`): the split above says how much of the load is that; Maestro's own part is its imports "
        "and the sync on load.",
        f"- The machine was shared with other work during the run (1-minute load average {r['load'][0]:.1f} before "
        f"and {r['load'][1]:.1f} after the subprocess measurements, on {os.cpu_count()} CPUs).",
    ]
    return "\n".join(lines)
