"""Where a mirrored in-process run's time goes: a profile of the op path, per node.

    .venv/bin/python bench/profile_op_path.py [--write] [--backend sqlite|postgresql] [--nodes N]

One warm-up run, then one run of linear-N (no-op nodes, default 100) under cProfile, on the environment of
bench/bench_mirror.py (a temporary MAESTRO_HOME with the project's dagster.yaml: SQLite by default), through
``run_workflow(..., in_process=True)`` with the in-run mirror on. The run's thread is profiled; the live mirror's
thread is measured by its CPU time (``time.thread_time`` around each pass, as bench_mirror.py does). Buckets are the
cumulative time of the named functions (nested ones subtracted from their parents), so they add up to the run.
``--write`` replaces the section "Where the time goes: the op path" of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import sysconfig
import time

from _benchdoc import DOC, write_sections
from bench_mirror import PgAdmin, _passes, bench_env, quiet_stderr  # same environment as the mirror benchmark

from maestro_dagster.executions.local import run_workflow

SECTION = "Where the time goes: the op path"
#: (label, "file:function" suffix): cumulative times, so a row includes the rows nested in it (indented)
ROWS = (
    ("the run (`run_workflow`)", "executions/local.py:run_workflow"),
    (
        "  the steps (`inner_plan_execution_iterator`: Dagster's step machinery and everything below)",
        "execute_plan.py:inner_plan_execution_iterator",
    ),
    ("    Maestro's node body (`run_node`: executor, context, output envelope)", "compiler/node.py:run_node"),
    (
        "  Dagster's handling of each event (`log_dagster_event`: logging, storage, listeners), run and steps",
        "log_manager.py:log_dagster_event",
    ),
    ("    the event log writes (`store_event`: every event, the steps' and the run's own)", ":store_event"),
    ("  the final mirror pass after the job (`mirror_run` in the transport)", "executions/transport.py:<lambda>"),
)


def _cumulative(stats: pstats.Stats, suffix: str) -> float:
    """The outermost of the functions matching ``suffix`` (an override calling its base counts once)."""
    found = [
        ct
        for (filename, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items()  # type: ignore[attr-defined]
        if f"{filename}:{name}".endswith(suffix)
    ]
    return max(found, default=0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--nodes", type=int, default=100)
    args = parser.parse_args()
    pg = PgAdmin() if args.backend == "postgresql" else None
    with bench_env(args.backend, args.nodes, pg) as env:
        env.set_mirror(True)
        workflow_id = f"linear-{args.nodes}"
        with quiet_stderr(env.log):
            run_workflow(env.instance, workflow_id, {}, in_process=True, trigger="bench", log_level="WARNING")
            _passes.clear()
            profile = cProfile.Profile()
            load = os.getloadavg()[0]
            started = time.perf_counter()
            result = profile.runcall(
                run_workflow, env.instance, workflow_id, {}, in_process=True, trigger="bench", log_level="WARNING"
            )
            wall = time.perf_counter() - started
        assert result.success
    stats = pstats.Stats(profile)
    total = _cumulative(stats, ROWS[0][1])
    rows = [(label, _cumulative(stats, key)) for label, key in ROWS]
    top = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:8]  # type: ignore[attr-defined]
    n = args.nodes
    lines = [
        f"## {SECTION}",
        "",
        f"Reproduce: `.venv/bin/python bench/profile_op_path.py --write{' --backend postgresql' * (pg is not None)}`. "
        f"One mirrored in-process run of linear-{n} ({args.backend}, the environment of bench/bench_mirror.py) under "
        f"cProfile after a warm-up run: {wall:.2f} s wall under the profiler (profiling slows Python code, so the "
        "shares matter, not the total), 1-minute load average "
        f"{load:.1f}. Each row is the profiled run's cumulative time in the named function, so a row includes the "
        "(indented) rows under it. The live mirror runs in its own thread, not profiled: its passes "
        f"took {sum(_passes):.2f} s CPU ({len(_passes)} passes).",
        "",
        "| where | s (profiled) | share | ms per node |",
        "|---|---:|---:|---:|",
    ]
    for label, value in rows:
        indent = (len(label) - len(label.lstrip())) // 2
        lines.append(
            f"| {'&nbsp;&nbsp;' * indent}{label.strip()} | {value:.2f} | {value / total:.0%} | {value / n * 1000:.1f} |"
        )
    lines += ["", "Largest self times (the function's own code, not its callees):", ""]
    lines += ["| function | self s | share |", "|---|---:|---:|"]
    for (filename, line, name), (_cc, _nc, tt, _ct, _callers) in top:
        where = filename.split("site-packages/")[-1].split("maestro_dagster/")[-1]
        where = where.removeprefix(sysconfig.get_path("stdlib") + "/")  # no path of this machine in the doc
        lines.append(f"| `{name}` ({where}:{line}) | {tt:.2f} | {tt / total:.0%} |")
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_sections({SECTION: body})
        print(f"wrote {SECTION!r} into {DOC.name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
