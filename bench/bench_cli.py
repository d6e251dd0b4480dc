"""Benchmark of the CLI's start: ``maestro --help``, ``maestro defs list`` and ``maestro db health`` as processes.

    .venv/bin/python bench/bench_cli.py [--write] [--reps N] [--baseline REV] [--quick]

Each command is run as a user runs it: the venv's ``maestro`` script in a new process, with a clean environment
(no ``MAESTRO_*``, ``POSTGRES_*`` or ``DAGSTER_HOME`` variables) and ``MAESTRO_HOME`` a temporary home whose SQLite
database is migrated (``maestro db upgrade``) and holds the repository's ``workflow_defs/`` (``maestro defs sync``)
before anything is measured. References, in the same rounds: ``python -c pass`` (the interpreter's own start) and
``python -c "import dagster"`` (what every command paid before the CLI imported lazily). With ``--baseline REV``
the three commands are also run from the package as it was at git revision REV (``git archive`` of it into a
temporary directory, run there as ``python -m maestro_dagster``): the figures before the change, on the same
database, in the same rounds. The baseline's own exit status is reported: its ``db health`` may exit 1 when the
database is at a newer revision than REV's migrations.

One warm-up round is dropped; then ``--reps`` rounds run every command once, in an order rotated each round
(interleaved, so that a change of the machine's load falls on every command alike). Figures are medians: wall time
around the process, and its CPU time (user + system, from ``resource.getrusage(RUSAGE_CHILDREN)`` deltas). The
1-minute load average is read before and after. ``--quick`` runs two rounds (a smoke run, not written).
``--write`` replaces the section "## CLI start" of docs/benchmarks.md and keeps every other section.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from _benchdoc import DOC, write_sections

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SECTION = "CLI start"
COMMAND = ".venv/bin/python bench/bench_cli.py --write --baseline 13d319f"
#: Variables that would point the commands at another database or Dagster home (as the tests' MAESTRO_ENV).
DROPPED_PREFIXES = ("MAESTRO_", "POSTGRES_", "USE_SQLITE", "SQLITE_PATH", "DAGSTER_HOME")


@dataclass(frozen=True)
class Case:
    """One measured command: its label, argv, working directory, what its output must hold, its target (s)."""

    label: str
    argv: tuple[str, ...]
    expect: str
    target: float | None = None
    cwd: Path | None = None
    baseline: bool = False


def clean_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED_PREFIXES)}
    env.update({"MAESTRO_HOME": str(home), "COLUMNS": "120"}, **(extra or {}))
    return env


def prepare_home(home: Path) -> None:
    """A migrated SQLite home holding the repository's definitions (not measured)."""
    maestro = str(VENV_BIN / "maestro")
    for argv in ([maestro, "db", "upgrade"], [maestro, "defs", "sync", "--dir", str(ROOT / "workflow_defs")]):
        done = subprocess.run(argv, env=clean_env(home), capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv[1:])} failed: {done.stderr[-2000:]}")


def extract_baseline(revision: str, into: Path) -> Path:
    """The package, its migrations and alembic.ini as they were at ``revision``, under ``into`` (no checkout)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision, "maestro_dagster", "migrations", "alembic.ini"],
        capture_output=True,
        timeout=120,
    )
    if archive.returncode != 0:
        raise SystemExit(f"--baseline {revision}: git archive failed: {archive.stderr.decode()[-500:]}")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def cases(home: Path, baseline: Path | None, revision: str | None) -> list[Case]:
    maestro, python = str(VENV_BIN / "maestro"), sys.executable
    measured = [
        Case("maestro --help", (maestro, "--help"), "Commands", 0.5),
        Case("maestro defs list", (maestro, "defs", "list"), "VALID", 1.0),
        Case("maestro db health", (maestro, "db", "health"), "status:   healthy", 1.0),
        Case('python -c "pass"', (python, "-c", "pass"), "", cwd=home),
        Case('python -c "import dagster"', (python, "-c", "import dagster"), "", cwd=home),
    ]
    if baseline is not None:
        module = (python, "-m", "maestro_dagster")
        measured += [
            Case(f"maestro --help @{revision}", (*module, "--help"), "Commands", cwd=baseline, baseline=True),
            Case(f"maestro defs list @{revision}", (*module, "defs", "list"), "VALID", cwd=baseline, baseline=True),
            Case(f"maestro db health @{revision}", (*module, "db", "health"), "", cwd=baseline, baseline=True),
        ]
    return measured


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(case: Case, home: Path) -> tuple[float, float, int]:
    """(wall s, CPU s, exit status) of one run of ``case``; its output must hold ``case.expect``."""
    env = clean_env(home, {"PYTHONPATH": str(case.cwd)} if case.baseline and case.cwd else None)
    cpu, wall = children_cpu(), time.perf_counter()
    done = subprocess.run(case.argv, cwd=case.cwd or ROOT, env=env, capture_output=True, text=True, timeout=600)
    wall, cpu = time.perf_counter() - wall, children_cpu() - cpu
    if not case.baseline and done.returncode != 0:
        raise SystemExit(f"{case.label}: exit {done.returncode}: {done.stderr[-2000:]}")
    if case.expect and case.expect not in done.stdout:
        raise SystemExit(f"{case.label}: {case.expect!r} not in its output: {(done.stdout + done.stderr)[-2000:]}")
    return wall, cpu, done.returncode


def run_benchmark(args: argparse.Namespace, progress: Any) -> dict[str, Any]:
    reps = 2 if args.quick else args.reps
    with tempfile.TemporaryDirectory(prefix="maestro-bench-cli-") as tmp:
        home = Path(tmp) / "home"
        progress("preparing the home (db upgrade, defs sync) ...")
        prepare_home(home)
        baseline = extract_baseline(args.baseline, Path(tmp) / "baseline") if args.baseline else None
        measured = cases(home, baseline, args.baseline)
        samples: dict[str, list[tuple[float, float, int]]] = {case.label: [] for case in measured}
        load_before = os.getloadavg()[0]
        for round_ in range(reps + 1):  # round 0 is the warm-up, dropped
            shift = round_ % len(measured)
            for case in measured[shift:] + measured[:shift]:
                sample = run_once(case, home)
                if round_:
                    samples[case.label].append(sample)
            progress(f"round {round_}{' (warm-up)' if not round_ else ''} done")
        load_after = os.getloadavg()[0]
    rows = {
        case.label: (
            statistics.median(s[0] for s in samples[case.label]),
            statistics.median(s[1] for s in samples[case.label]),
            sorted({s[2] for s in samples[case.label]}),
            case,
        )
        for case in measured
    }
    return {"rows": rows, "reps": reps, "load": (load_before, load_after), "baseline": args.baseline}


def machine() -> str:
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}"


def to_markdown(r: dict[str, Any]) -> str:
    rows = r["rows"]
    dagster_wall = rows['python -c "import dagster"'][0]
    lines = [
        f"## {SECTION}",
        "",
        f"Measured by `{COMMAND}` in one run on this machine ({machine()}); medians of {r['reps']} interleaved "
        "rounds after one warm-up round (dropped), each command a new process with a clean environment on a "
        "temporary SQLite home (migrated, holding `workflow_defs/`): wall time around the process and its CPU time "
        '(user + system). Ratio: wall time / the wall time of `python -c "import dagster"`, the import every '
        "command paid before the CLI imported lazily."
        + (
            f" Rows `@{r['baseline']}`: the same commands from the package at that revision (`git archive`, run as "
            "`python -m maestro_dagster`), the figures before the change."
            if r["baseline"]
            else ""
        ),
        "",
        "| command | wall (median) | CPU (median) | / import dagster | target (wall) | met |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for label, (wall, cpu, codes, case) in rows.items():
        target = f"<= {case.target:.1f} s" if case.target else ""
        met = ("met" if wall <= case.target else "NOT met") if case.target else ""
        if case.baseline and codes != [0]:
            met = f"(exit {', '.join(map(str, codes))})"
        ratio = wall / dagster_wall
        lines.append(f"| `{label}` | {wall * 1000:,.0f} ms | {cpu * 1000:,.0f} ms | {ratio:.2f} | {target} | {met} |")
    before, after = r["load"]
    lines += [
        "",
        f"- 1-minute load average before the rounds {before:.2f}, after {after:.2f}, on {os.cpu_count()} CPUs "
        "(a shared machine: compare the rows of one run).",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite the section '{SECTION}' of {DOC.name}")
    parser.add_argument("--reps", type=int, default=15, help="measured rounds (default 15)")
    parser.add_argument("--baseline", metavar="REV", help="also run the commands of the package at git revision REV")
    parser.add_argument("--quick", action="store_true", help="smoke run: two rounds, not written")
    args = parser.parse_args()

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    body = to_markdown(run_benchmark(args, progress))
    print(body)
    if args.write:
        if args.quick:
            raise SystemExit("--quick figures are a smoke run: not written")
        write_sections({SECTION: body})
        progress(f"wrote the section '{SECTION}' of {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
