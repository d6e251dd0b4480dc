"""A definition document as stored in ``workflow_definitions`` / ``workflow_definition_versions``, read back as a
``WorkflowSpec``: the one place a stored document is parsed, and the one error when it no longer parses (stored
by a version of Maestro whose definition format differed)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError as PydanticValidationError

from maestro_dagster.errors import DefinitionError
from maestro_dagster.spec.models import WorkflowSpec


def stored_spec(workflow_id: str, version: int, document: Any) -> WorkflowSpec:
    """The typed definition of a stored document that was valid when it was stored."""
    try:
        return WorkflowSpec.from_storage(document)
    except PydanticValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'definition'}: {e['msg']}" for e in exc.errors())
        raise DefinitionError(
            f"Workflow {workflow_id!r} (version {version}) is stored as valid but no longer matches the definition "
            f"format ({problems}): version {version} is not a valid definition, so it has no job and no execution. "
            "Fix the definition and store it again (`maestro defs sync`, or the API).",
            details={
                "workflow_id": workflow_id,
                "version": version,
                "errors": [{"location": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()],
            },
        ) from None
