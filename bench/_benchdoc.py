"""docs/benchmarks.md, shared by every bench script: each rewrites only its own sections, every other one is kept."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Each section is produced by one run of the script it names, on the machine it describes: its figures (medians of
repeated measurements, and the ratios between them) were all measured in that one run, on that machine. Absolute
times move with the machine and its load; compare the figures within a section. Every script's `--write` rewrites
only its own sections.
"""


def write_sections(sections: Mapping[str, str]) -> None:
    """Replace the ``## <title>`` sections named by ``sections`` (title -> body starting with its heading), or append
    them in the given order; the file's other sections and its header stay as they are."""
    text_in = DOC.read_text() if DOC.exists() else HEADER
    parts = re.split(r"(?m)^(?=## )", text_in)
    head, body = parts[0], parts[1:]
    if head.strip() in ("", "# Benchmarks"):
        head = HEADER
    out, placed = [], set()
    for part in body:
        title = part.splitlines()[0][3:].strip()
        if title in sections:
            if title not in placed:
                out.append(sections[title].rstrip() + "\n\n")
                placed.add(title)
        else:
            out.append(part.rstrip() + "\n\n")
    out += [text.rstrip() + "\n\n" for title, text in sections.items() if title not in placed]
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(head.rstrip() + "\n\n" + "".join(out).rstrip() + "\n")
