"""The JSON Schema of a workflow definition, generated from :class:`WorkflowSpec` and shipped as a file.

``workflow.schema.json`` is checked by a unit test against :func:`render_schema`, so it cannot go stale;
regenerate it with ``python -m maestro_dagster.spec``.
"""

from __future__ import annotations

import json
from pathlib import Path

from maestro_dagster.spec.models import WorkflowSpec

SCHEMA_PATH = Path(__file__).with_name("workflow.schema.json")
SCHEMA_ID = "https://maestro-dagster.local/schemas/workflow.schema.json"


def render_schema() -> str:
    """The schema as pretty, key-sorted JSON with a trailing newline."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **WorkflowSpec.model_json_schema(),
    }
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> bool:
    """Write the schema; True when the file changed."""
    text = render_schema()
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True
