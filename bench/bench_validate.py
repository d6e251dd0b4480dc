"""Benchmark of definition validation: how its time grows with the graph, and the largest allowed YAML file.

    .venv/bin/python bench/bench_validate.py [--write] [--reps N] [--sizes 100,1000,10000] [--quick]

In one process, no database:

(a) ``validate_definition`` of generated definitions of 100, 1,000 and 10,000 nodes, two shapes: a *chain*
    (n0 -> n1 -> ... ) and a *fan-out* (n0 -> every other node); every node but n0 has a condition reading its
    parent's output (``outputs['<parent>'].get('ok', True)``), so the ancestry check runs for every node. The
    limits are raised in the policy (``DefinitionLimits``: nodes, edges, depth and document size) so that the
    definitions are valid; each report is checked (``ok``). The growth ratio t(10 n) / t(n) is reported next to
    10 (linear) and 10 log(10 n) / log(n) (n log n);
(b) load + validate (``validate_file``) of a YAML file just under ``max_definition_bytes`` under the default
    limits (1,000 nodes as a binary tree, each with a config and a condition, padded to just under 1 MiB), and
    the same document as JSON.

Figures are medians of ``--reps`` repetitions (after one warm-up), wall and CPU time of this process.
``--quick`` measures one small size once (a smoke run). ``--write`` replaces the section
"## Validation" of docs/benchmarks.md and keeps every other section.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _benchdoc import DOC, write_sections

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from maestro_dagster.policy import DefinitionLimits, DefinitionPolicy  # noqa: E402
from maestro_dagster.spec import validate_definition, validate_file  # noqa: E402

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
SECTION = "Validation"
COMMAND = ".venv/bin/python bench/bench_validate.py --write"


def definition(shape: str, nodes: int) -> dict[str, Any]:
    """``nodes`` no-op nodes as a chain or a fan-out; every node but n0 reads its parent's output."""
    ids = [f"n{i}" for i in range(nodes)]
    parent = {node: (ids[i - 1] if shape == "chain" else ids[0]) for i, node in enumerate(ids) if i}
    return {
        "id": f"bench_{shape}_{nodes}",
        "nodes": {
            node: ({"condition": f"outputs['{parent[node]}'].get('ok', True)"} if node in parent else {})
            for node in ids
        },
        "edges": [{"source": parent[node], "target": node} for node in ids if node in parent],
    }


def raised_policy(nodes: int) -> DefinitionPolicy:
    return DefinitionPolicy.allowing(
        limits=DefinitionLimits(
            max_nodes=nodes, max_edges=nodes, max_depth=nodes, max_definition_bytes=max(1_048_576, nodes * 200)
        )
    )


def largest_document(limit: int) -> tuple[dict[str, Any], dict[str, str]]:
    """1,000 nodes (the default max_nodes) as a binary tree (depth 10, under max_depth), each with a config and a
    condition reading its parent's output, padded so that the YAML and the JSON text stay just under ``limit``
    bytes. Returns the document and its texts by file name."""
    count = DefinitionLimits().max_nodes
    ids = [f"n{i}" for i in range(count)]
    nodes: dict[str, Any] = {}
    for i, node_id in enumerate(ids):
        node: dict[str, Any] = {"executor": "noop", "description": "", "config": {"output": {"index": i, "ok": True}}}
        if i:
            node["condition"] = f"outputs['{ids[(i - 1) // 2]}'].get('ok', True)"
        nodes[node_id] = node
    edges = [{"source": ids[(i - 1) // 2], "target": ids[i]} for i in range(1, count)]
    document = {"id": "bench_largest", "nodes": nodes, "edges": edges}

    renderers: dict[str, Callable[[], str]] = {
        "largest.yaml": lambda: yaml.dump(document, Dumper=_DUMPER, sort_keys=False, width=10_000),
        "largest.json": lambda: json.dumps(document, indent=1),
    }
    texts = {}
    for name, render in renderers.items():  # each file padded on its own to just under the limit
        for node in nodes.values():
            node["description"] = ""
        pad = (limit - len(render().encode())) // count
        while pad > 0:
            for node in nodes.values():
                node["description"] = "x" * pad
            text = render()
            if len(text.encode()) <= limit:
                texts[name] = text
                break
            pad -= max(1, pad // 100)
        else:
            raise SystemExit(f"{name}: the generated document does not fit under the limit")
    return document, texts


def timed(fn: Callable[[], Any], reps: int) -> tuple[float, float, Any]:
    """Median (wall s, CPU s) of ``reps`` calls of ``fn`` after one warm-up call, and the last result."""
    result = fn()
    samples = []
    for _ in range(reps):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        samples.append((time.perf_counter() - wall, time.process_time() - cpu))
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples), result


def run_benchmark(args: argparse.Namespace, progress: Callable[[str], None]) -> dict[str, Any]:
    sizes = [100] if args.quick else [int(s) for s in args.sizes.split(",")]
    reps = 1 if args.quick else args.reps
    rows: dict[tuple[str, int], tuple[float, float]] = {}
    for shape in ("chain", "fan-out"):
        for nodes in sizes:
            raw, policy = definition(shape, nodes), raised_policy(nodes)
            wall, cpu, report = timed(lambda raw=raw, policy=policy: validate_definition(raw, policy=policy), reps)
            if not report.ok:
                raise SystemExit(f"{shape} {nodes}: not valid: {report.summary()[:500]}")
            rows[(shape, nodes)] = (wall, cpu)
            progress(f"{shape} {nodes}: {wall * 1000:.1f} ms wall, {cpu * 1000:.1f} ms CPU")
    files: dict[str, tuple[float, float, int]] = {}
    if not (args.quick or args.no_files):
        limit = DefinitionLimits().max_definition_bytes
        _, texts = largest_document(limit)
        with tempfile.TemporaryDirectory(prefix="maestro-bench-validate-") as tmp:
            for name, text in texts.items():
                path = Path(tmp) / name
                path.write_text(text, encoding="utf-8")
                size = path.stat().st_size
                if size > limit:
                    raise SystemExit(f"{name} is {size} bytes, over the limit {limit}")
                policy = DefinitionPolicy.allowing()
                wall, cpu, report = timed(lambda path=path, policy=policy: validate_file(path, policy), reps)
                if not report.ok:
                    raise SystemExit(f"{name}: not valid: {report.summary()[:500]}")
                files[name] = (wall, cpu, size)
                progress(f"{name} ({size:,} bytes): {wall * 1000:.1f} ms wall, {cpu * 1000:.1f} ms CPU")
    return {"rows": rows, "sizes": sizes, "reps": reps, "files": files, "load": os.getloadavg()[0]}


def machine() -> str:
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU(s), Python {platform.python_version()}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def to_markdown(r: dict[str, Any]) -> str:
    rows, sizes = r["rows"], r["sizes"]
    lines = [
        f"## {SECTION}",
        "",
        f"Measured by `{COMMAND}` in one run on this machine ({machine()}); medians of {r['reps']} repetitions "
        "after one warm-up, wall and CPU time of the benchmark process (no database). (a) `validate_definition` "
        "of a chain (n0 -> n1 -> ...) and a fan-out (n0 -> every other node) where every node but n0 has a "
        "condition reading its parent's output, limits raised in the policy so that the definitions are valid; "
        "growth = t(10 n) / t(n), against 10 for linear and 10 log(10 n) / log(n) for n log n. (b) `validate_file` "
        "(read, parse, validate) of the largest document the default limits allow: 1,000 nodes (a binary tree) with "
        "configs and conditions, padded to just under `MAESTRO_MAX_DEFINITION_BYTES` (1 MiB).",
        "",
        "| shape | nodes | wall (median) | CPU (median) | growth (CPU) | n log n growth |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    worst = 0.0
    for shape in ("chain", "fan-out"):
        previous: int | None = None
        for nodes in sizes:
            wall, cpu = rows[(shape, nodes)]
            growth = expected = ""
            if previous is not None:
                ratio = cpu / max(rows[(shape, previous)][1], 1e-9)
                nlogn = (nodes * math.log(nodes)) / (previous * math.log(previous))
                worst = max(worst, ratio / nlogn)
                growth, expected = f"{ratio:.1f}x", f"{nlogn:.1f}x"
            lines.append(f"| {shape} | {nodes:,} | {_ms(wall)} | {_ms(cpu)} | {growth} | {expected} |")
            previous = nodes
    for name, (wall, cpu, size) in r["files"].items():
        lines.append(f"| `{name}` ({size:,} bytes) | 1,000 | {_ms(wall)} | {_ms(cpu)} |  |  |")
    top = max(sizes)
    slowest = max(rows[(shape, top)][1] for shape in ("chain", "fan-out"))
    lines += [
        "",
        f"- Target: {top:,} nodes validated in <= 1 s: {'met' if slowest <= 1.0 else 'NOT met'} "
        f"(slowest shape {_ms(slowest)} CPU); growth no worse than n log n: "
        f"{'met' if worst <= 1.25 else 'NOT met'} (worst measured growth / n log n growth: {worst:.2f}).",
        f"- 1-minute load average at the end of the run: {r['load']:.1f} on {os.cpu_count()} CPUs (shared machine).",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite the section '{SECTION}' of {DOC.name}")
    parser.add_argument("--reps", type=int, default=5, help="repetitions of each measurement (default 5)")
    parser.add_argument("--sizes", default="100,1000,10000", help="node counts, comma-separated")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100 nodes, once, no file measurement")
    parser.add_argument("--no-files", action="store_true", help="skip (b), the largest YAML/JSON file")
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
