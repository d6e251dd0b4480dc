"""``python -m maestro_dagster.spec [--check]``: regenerate (or check) ``workflow.schema.json``."""

from __future__ import annotations

import sys

from maestro_dagster.spec.schema import SCHEMA_PATH, render_schema, write_schema


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--check"]:
        current = SCHEMA_PATH.read_text(encoding="utf-8") if SCHEMA_PATH.exists() else ""
        if current != render_schema():
            print(f"{SCHEMA_PATH} is stale: run python -m maestro_dagster.spec", file=sys.stderr)
            return 1
        print(f"{SCHEMA_PATH} is up to date")
        return 0
    if args:
        print("usage: python -m maestro_dagster.spec [--check]", file=sys.stderr)
        return 2
    changed = write_schema()
    print(f"{'wrote' if changed else 'unchanged:'} {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
