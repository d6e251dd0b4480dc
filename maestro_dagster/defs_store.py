"""The definitions store: validated definitions in and out of ``workflow_definitions``.

``sync_directory`` upserts every file of ``workflow_defs/`` (a new version only when the content changes);
an invalid file is stored with its errors and produces no job, and never stops the other files from
syncing. A re-sync reads and hashes every file but parses and validates only the files that changed
(``source_hash``: the file's bytes and the policy it was validated under, compared with what the row
stored from that file holds, all rows read in one query); a file whose row is invalid, or was changed since
through the API, is validated again as before. A definition's origin (``origin_of``: a file, or the API)
chooses the policy it is validated and compiled under (:class:`maestro_dagster.policy.DefinitionPolicy`).
Rows whose file was removed stay: the table is the source of truth (definitions created through the API
live only there).
Functions take a session and do not commit.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from maestro_dagster.db.models import WorkflowDefinition
from maestro_dagster.db.repositories import DefinitionRecord, RepositoryFactory
from maestro_dagster.errors import ConflictError, DefinitionError, ValidationError
from maestro_dagster.names import ID_RE
from maestro_dagster.policy import ORIGIN_API, ORIGIN_REPOSITORY, DefinitionPolicy, Origin
from maestro_dagster.settings import Settings
from maestro_dagster.spec import (
    SpecProblem,
    ValidationReport,
    WorkflowSpec,
    iter_definition_files,
    load_definition_file,
    validate_definition,
    validate_loaded,
)
from maestro_dagster.spec.stored import stored_spec

API_SOURCE = "api"  # the ``source`` of a definition posted through the API


@dataclass(frozen=True)
class SyncedDefinition:
    """The outcome of storing one definition."""

    workflow_id: str | None
    source: str
    version: int | None
    changed: bool
    valid: bool
    errors: list[SpecProblem] = field(default_factory=list)


def _raw_hash(raw: Any) -> str:
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def record_for(
    report: ValidationReport, raw: Any, source: str | None, source_hash: str | None = None
) -> DefinitionRecord | None:
    """The row to store for a validation report; None when not even an id could be read."""
    if report.spec is not None:
        spec = report.spec
        stored = spec.to_storage()
        return DefinitionRecord(
            id=spec.id,
            name=spec.name or spec.id,
            description=spec.description,
            workflow_type=spec.workflow_type,
            nodes=stored["nodes"],
            edges=stored["edges"],
            metadata=spec.metadata,
            definition=stored,
            content_hash=spec.content_hash(),
            source=source,
            source_hash=source_hash,
        )
    workflow_id = report.workflow_id
    if not workflow_id or not ID_RE.match(workflow_id):
        return None
    data = raw if isinstance(raw, dict) else {}
    nodes = data.get("nodes") if isinstance(data.get("nodes"), dict) else {}
    edges = data.get("edges") if isinstance(data.get("edges"), list) else []
    name: str = data["name"] if isinstance(data.get("name"), str) else workflow_id
    wtype: str = data["workflow_type"] if data.get("workflow_type") in ("linear", "parallel", "custom") else "custom"
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else None
    document = json.loads(json.dumps(data, default=str)) if data else {"id": workflow_id}
    return DefinitionRecord(
        id=workflow_id,
        name=name[:255],
        description=data.get("description") if isinstance(data.get("description"), str) else None,
        workflow_type=wtype,
        nodes=json.loads(json.dumps(nodes, default=str)),
        edges=json.loads(json.dumps(edges, default=str)),
        metadata=metadata,
        definition=document,
        content_hash=_raw_hash(document),
        is_valid=False,
        validation_errors=[p.to_dict() for p in report.errors],
        source=source,
        source_hash=source_hash,
    )


def store_report(
    session: Session, report: ValidationReport, raw: Any, source: str | None, source_hash: str | None = None
) -> SyncedDefinition:
    record = record_for(report, raw, source, source_hash)
    if record is None:
        return SyncedDefinition(report.workflow_id, source or "", None, False, False, list(report.errors))
    row, changed = RepositoryFactory(session).workflow.create(record)
    return SyncedDefinition(row.id, source or "", row.version, changed, report.ok, list(report.errors))


def origin_of(source: str | None) -> Origin:
    """Where a stored definition came from: a file of ``workflow_defs/`` (its path), else the API.

    Anything not synced from a file gets the API's (narrower) policy."""
    return ORIGIN_REPOSITORY if source and source != API_SOURCE else ORIGIN_API


def validate_posted(raw: Any, settings: Settings, source: str = API_SOURCE) -> ValidationReport:
    """Validate one definition document under the policy of its origin (the API's by default); nothing stored."""
    return validate_definition(raw, policy=DefinitionPolicy.for_origin(settings, origin_of(source)), source=source)


def store_definition(
    session: Session, raw: Mapping[str, Any], settings: Settings, source: str = API_SOURCE
) -> tuple[ValidationReport, SyncedDefinition]:
    """Validate (under the policy of ``source``'s origin, the API's by default) and store one definition."""
    report = validate_posted(raw, settings, source)
    return report, store_report(session, report, raw, source)


def store_posted(session: Session, raw: Any, settings: Settings) -> tuple[WorkflowDefinition, bool]:
    """A definition posted through the API: validated first (``DefinitionError``, 422, with every problem, and
    nothing stored), then stored as a new version when its content changed. (the row, whether it changed)"""
    report = validate_posted(raw, settings)
    if not report.ok:
        raise DefinitionError(
            f"Definition {report.workflow_id or '?'} is invalid: {len(report.errors)} problem(s).",
            details={"workflow_id": report.workflow_id, "errors": [p.to_dict() for p in report.errors]},
        )
    stored = store_report(session, report, raw, API_SOURCE)
    return RepositoryFactory(session).workflow.require(stored.workflow_id or ""), stored.changed


def replace_posted(session: Session, workflow_id: str, raw: Any, settings: Settings) -> tuple[WorkflowDefinition, bool]:
    """``store_posted`` for an existing workflow whose id the definition must keep."""
    if not isinstance(raw, Mapping) or raw.get("id") != workflow_id:
        given = raw.get("id") if isinstance(raw, Mapping) else None
        raise ValidationError(f"The definition's id {given!r} must equal the URL's {workflow_id!r}.")
    RepositoryFactory(session).workflow.require(workflow_id)
    return store_posted(session, raw, settings)


def delete_workflow(session: Session, workflow_id: str, *, with_executions: bool = False) -> None:
    """Remove a workflow and its versions (and its executions with ``with_executions``, else 409 if it has any)."""
    repos = RepositoryFactory(session)
    repos.workflow.require(workflow_id)
    repos.workflow.delete(workflow_id, with_executions=with_executions)


def _display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


#: Modules whose code decides whether a definition is valid: a change to any of them (a tightened rule, an
#: upgrade of the package) makes every synced file validate again, as a changed policy does.
_RULE_MODULES = ("maestro_dagster.spec", "maestro_dagster.policy", "maestro_dagster.names", "maestro_dagster.settings")


@functools.cache
def rules_digest() -> str:
    """sha256 of the source of the validation rules (``_RULE_MODULES``, every file of a package); computed once per
    process. Part of every synced file's ``source_hash``, so unchanged files are never trusted across new rules."""
    digest = hashlib.sha256()
    for name in _RULE_MODULES:
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin) if spec is not None and spec.origin else None
        if origin is None:
            continue
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        for path in files:
            digest.update(path.name.encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def policy_fingerprint(policy: DefinitionPolicy) -> bytes:
    """The policy a file is validated under, canonically (sets sorted), and the rules' digest: part of a synced
    file's ``source_hash``, so that a changed allowlist, limit or validation rule validates every file again."""
    return json.dumps({"policy": asdict(policy), "rules": rules_digest()}, sort_keys=True, default=sorted).encode(
        "utf-8"
    )


def source_hash(content: bytes, fingerprint: bytes) -> str:
    """What a synced row stores of its file: sha256 of the policy's fingerprint and of the file's bytes."""
    digest = hashlib.sha256(fingerprint)
    digest.update(b"\0")
    digest.update(content)
    return digest.hexdigest()


def _file_hash(path: Path, fingerprint: bytes, max_bytes: int) -> str | None:
    """The file's ``source_hash``; None when it cannot be read or is too large (the loader reports why)."""
    try:
        with path.open("rb") as handle:
            content = handle.read(max_bytes + 1)
    except OSError:
        return None
    return source_hash(content, fingerprint) if len(content) <= max_bytes else None


def sync_directory(session: Session, directory: Path, settings: Settings) -> list[SyncedDefinition]:
    """Upsert every definition file of ``directory``; invalid ones are stored with their errors.

    A file whose bytes (and the policy) are those its valid row was stored from is skipped unparsed: its row
    stays as stored (see ``source_hash``)."""
    results: list[SyncedDefinition] = []
    seen: dict[str, str] = {}
    policy = DefinitionPolicy.for_origin(settings, ORIGIN_REPOSITORY)
    fingerprint = policy_fingerprint(policy)
    unchanged = {(row.source, row.source_hash): row for row in RepositoryFactory(session).workflow.synced_rows()}
    for path in iter_definition_files(directory):
        source = _display_path(path)
        file_hash = _file_hash(path, fingerprint, policy.limits.max_definition_bytes)
        stored = unchanged.get((source, file_hash)) if file_hash else None
        if stored is not None:
            workflow_id: str | None = stored.id
            synced = SyncedDefinition(stored.id, source, stored.version, False, True)
        else:
            loaded = load_definition_file(path, policy.limits)
            report = validate_loaded(loaded, policy)
            workflow_id = report.workflow_id
        if workflow_id and workflow_id in seen:
            problem = SpecProblem(
                "id",
                f"workflow id {workflow_id!r} is already defined in {seen[workflow_id]}: give one of them another id",
                "duplicate_id",
            )
            results.append(SyncedDefinition(workflow_id, source, None, False, False, [problem]))
            continue
        if workflow_id:
            seen[workflow_id] = source
        if stored is None:
            synced = store_report(session, report, loaded.data, source, file_hash)
        results.append(synced)
    return results


def require_valid(row: WorkflowDefinition) -> None:
    """An invalid definition has no job: running or scheduling it conflicts with its stored state (409)."""
    if not row.is_valid:
        errors = "; ".join(str(e.get("message", e)) for e in row.validation_errors or [])
        raise ConflictError(
            f"Workflow {row.id!r} (version {row.version}) is invalid and has no job: {errors}. Fix the definition "
            "and store it again (`maestro defs sync`, or the API).",
            details={"workflow_id": row.id, "errors": row.validation_errors or []},
        )


def load_spec(row: WorkflowDefinition) -> WorkflowSpec:
    """The typed definition of a stored, valid row."""
    require_valid(row)
    return stored_spec(row.id, row.version, row.definition)
