"""A re-sync of ``workflow_defs/`` parses and validates only the files that changed (``source_hash``), on SQLite and
PostgreSQL: an unchanged file keeps its row as stored, unparsed; a changed, renamed, re-posted or invalid one is
validated as before; a deleted file's row stays."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from maestro_dagster import defs_store
from maestro_dagster.db.models import WorkflowDefinition
from maestro_dagster.db.repositories import DefinitionRecord, RepositoryFactory
from maestro_dagster.defs_store import policy_fingerprint, source_hash, store_posted, sync_directory
from maestro_dagster.policy import ORIGIN_REPOSITORY, DefinitionLimits, DefinitionPolicy
from maestro_dagster.settings import Settings
from maestro_dagster.spec.loader import LoadedFile

ALPHA = "id: alpha\nnodes:\n  a: {executor: noop}\n  b: {executor: noop}\nedges:\n  - {source: a, target: b}\n"
BETA = "id: beta\nnodes:\n  only: {executor: noop, config: {output: {answer: 42}}}\n"
CYCLE = "id: gamma\nnodes:\n  a: {executor: noop}\n  b: {executor: noop}\nedges:\n  - {source: a, target: b}\n" + (
    "  - {source: b, target: a}\n"
)


@pytest.fixture
def defs_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "defs"
    directory.mkdir()
    (directory / "alpha.yaml").write_text(ALPHA)
    (directory / "beta.yaml").write_text(BETA)
    return directory


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files the sync parses (the real loader, called through)."""
    names: list[str] = []
    real = defs_store.load_definition_file

    def counting(path: Path, limits: DefinitionLimits | None = None) -> LoadedFile:
        names.append(Path(path).name)
        return real(path, limits)

    monkeypatch.setattr(defs_store, "load_definition_file", counting)
    return names


def _sync(session: Session, directory: Path, settings: Settings) -> dict[str, defs_store.SyncedDefinition]:
    return {Path(r.source).name: r for r in sync_directory(session, directory, settings)}


def _row(session: Session, workflow_id: str) -> WorkflowDefinition:
    session.flush()
    session.expire_all()  # read back what was written
    row = session.get(WorkflowDefinition, workflow_id)
    assert row is not None
    return row


def test_an_unchanged_resync_parses_nothing_and_keeps_every_row(db_session, fast_settings, defs_dir, parsed):
    first = _sync(db_session, defs_dir, fast_settings)
    assert sorted(parsed) == ["alpha.yaml", "beta.yaml"]
    assert all(r.changed and r.valid and r.version == 1 for r in first.values())
    assert _row(db_session, "alpha").source_hash

    parsed.clear()
    again = _sync(db_session, defs_dir, fast_settings)
    assert parsed == []
    assert {name: (r.workflow_id, r.version, r.changed, r.valid) for name, r in again.items()} == {
        "alpha.yaml": ("alpha", 1, False, True),
        "beta.yaml": ("beta", 1, False, True),
    }


def test_a_stored_row_of_an_unchanged_file_stays_as_stored_even_if_new_rules_refuse_it(
    db_session, fast_settings, defs_dir, parsed
):
    # As if an older version of the rules had accepted the cyclic file: a valid row with that file's hash.
    path = defs_dir / "gamma.yaml"
    path.write_text(CYCLE)
    policy = DefinitionPolicy.for_origin(fast_settings, ORIGIN_REPOSITORY)
    file_hash = source_hash(path.read_bytes(), policy_fingerprint(policy))
    record = DefinitionRecord(
        id="gamma", name="gamma", nodes={"a": {}, "b": {}}, edges=[], definition={"id": "gamma"},
        content_hash="0" * 64, source=str(path), source_hash=file_hash,
    )  # fmt: skip
    RepositoryFactory(db_session).workflow.create(record)

    result = _sync(db_session, defs_dir, fast_settings)["gamma.yaml"]
    assert "gamma.yaml" not in parsed
    assert (result.valid, result.changed, result.version) == (True, False, 1)
    assert _row(db_session, "gamma").is_valid is True

    path.write_text(CYCLE + "# edited\n")  # the file changed: validated again, under today's rules
    result = _sync(db_session, defs_dir, fast_settings)["gamma.yaml"]
    assert parsed.count("gamma.yaml") == 1
    assert (result.valid, result.changed, result.version) == (False, True, 2)
    row = _row(db_session, "gamma")
    assert row.is_valid is False and "cycle" in " ".join(e["message"] for e in row.validation_errors)


def test_a_row_stored_under_older_rules_is_validated_again(db_session, fast_settings, defs_dir, parsed, monkeypatch):
    # The attack: a file an older (looser) version of the rules accepted must not stay trusted once the rules
    # tighten. The rules' digest is part of the hash, so the unchanged file is parsed and refused.
    path = defs_dir / "gamma.yaml"
    path.write_text(CYCLE)
    policy = DefinitionPolicy.for_origin(fast_settings, ORIGIN_REPOSITORY)
    with monkeypatch.context() as patch:
        patch.setattr(defs_store, "rules_digest", lambda: "0" * 64)  # the rules the row was stored under
        old_hash = source_hash(path.read_bytes(), policy_fingerprint(policy))
    assert old_hash != source_hash(path.read_bytes(), policy_fingerprint(policy))
    record = DefinitionRecord(
        id="gamma", name="gamma", nodes={"a": {}, "b": {}}, edges=[], definition={"id": "gamma"},
        content_hash="0" * 64, source=str(path), source_hash=old_hash,
    )  # fmt: skip
    RepositoryFactory(db_session).workflow.create(record)

    result = _sync(db_session, defs_dir, fast_settings)["gamma.yaml"]
    assert parsed.count("gamma.yaml") == 1
    assert (result.valid, result.changed) == (False, True)
    assert _row(db_session, "gamma").is_valid is False


def test_the_rules_digest_covers_the_validation_code():
    digest = defs_store.rules_digest()
    assert len(digest) == 64 and digest == defs_store.rules_digest()
    assert "maestro_dagster.spec" in defs_store._RULE_MODULES and "maestro_dagster.policy" in defs_store._RULE_MODULES


def test_a_changed_file_is_validated_again_and_the_others_are_skipped(db_session, fast_settings, defs_dir, parsed):
    _sync(db_session, defs_dir, fast_settings)
    parsed.clear()
    (defs_dir / "beta.yaml").write_text(BETA.replace("42", "43"))
    results = _sync(db_session, defs_dir, fast_settings)
    assert parsed == ["beta.yaml"]
    assert (results["beta.yaml"].changed, results["beta.yaml"].version) == (True, 2)
    assert _row(db_session, "beta").definition["nodes"]["only"]["config"]["output"] == {"answer": 43}

    parsed.clear()  # and the new content is what the next re-sync skips
    assert not any(r.changed for r in _sync(db_session, defs_dir, fast_settings).values())
    assert parsed == []


def test_an_invalid_file_is_validated_on_every_sync(db_session, fast_settings, defs_dir, parsed):
    # Its fix may lie outside the file (a module installed, an allowlist widened), so it is never skipped.
    (defs_dir / "gamma.yaml").write_text(CYCLE)
    _sync(db_session, defs_dir, fast_settings)
    parsed.clear()
    results = _sync(db_session, defs_dir, fast_settings)
    assert parsed == ["gamma.yaml"]
    assert results["gamma.yaml"].valid is False and results["gamma.yaml"].errors


def test_a_deleted_file_keeps_its_row_and_a_renamed_one_moves_its_source(db_session, fast_settings, defs_dir, parsed):
    _sync(db_session, defs_dir, fast_settings)
    (defs_dir / "beta.yaml").unlink()
    (defs_dir / "alpha.yaml").rename(defs_dir / "renamed.yaml")
    parsed.clear()
    results = _sync(db_session, defs_dir, fast_settings)
    assert set(results) == {"renamed.yaml"} and parsed == ["renamed.yaml"]
    assert (results["renamed.yaml"].changed, results["renamed.yaml"].version) == (False, 1)
    assert _row(db_session, "alpha").source == str(defs_dir / "renamed.yaml")
    assert _row(db_session, "beta").version == 1  # the table is the source of truth: the row stays


def test_a_row_posted_through_the_api_is_not_skipped(db_session, fast_settings, defs_dir, parsed):
    _sync(db_session, defs_dir, fast_settings)
    posted = {"id": "alpha", "nodes": {"x": {"executor": "noop"}}}
    row, changed = store_posted(db_session, posted, fast_settings)
    assert changed and row.version == 2 and row.source == defs_store.API_SOURCE and row.source_hash is None

    parsed.clear()  # the file is unchanged, but its row is not what it stored: the file is stored again, as before
    result = _sync(db_session, defs_dir, fast_settings)["alpha.yaml"]
    assert parsed == ["alpha.yaml"]
    assert (result.changed, result.version) == (True, 3)
    row = _row(db_session, "alpha")
    assert set(row.definition["nodes"]) == {"a", "b"} and row.source == str(defs_dir / "alpha.yaml")

    # The same content posted again only moves the source to the API; the next sync takes it back, no new version.
    store_posted(
        db_session, {"id": "alpha", "nodes": row.definition["nodes"], "edges": row.definition["edges"]}, fast_settings
    )
    parsed.clear()
    result = _sync(db_session, defs_dir, fast_settings)["alpha.yaml"]
    assert parsed == ["alpha.yaml"] and (result.changed, result.version) == (False, 3)
    parsed.clear()
    _sync(db_session, defs_dir, fast_settings)
    assert parsed == []


def test_a_changed_policy_validates_every_file_again(db_session, fast_settings, defs_dir, parsed):
    _sync(db_session, defs_dir, fast_settings)
    parsed.clear()
    narrower = fast_settings.model_copy(update={"max_nodes": 1})
    results = _sync(db_session, defs_dir, narrower)
    assert sorted(parsed) == ["alpha.yaml", "beta.yaml"]
    assert (results["alpha.yaml"].valid, results["beta.yaml"].valid) == (False, True)


def test_an_unchanged_file_whose_id_another_file_took_is_a_duplicate(db_session, fast_settings, defs_dir, parsed):
    _sync(db_session, defs_dir, fast_settings)
    parsed.clear()
    (defs_dir / "0-first.yaml").write_text(
        ALPHA.replace("b: {executor: noop}", "c: {executor: noop}").replace("target: b", "target: c")
    )
    results = _sync(db_session, defs_dir, fast_settings)
    assert results["0-first.yaml"].changed and results["0-first.yaml"].version == 2
    assert parsed == ["0-first.yaml"]  # alpha.yaml is skipped unparsed, and still reported as the duplicate
    assert [e.code for e in results["alpha.yaml"].errors] == ["duplicate_id"]
    assert results["alpha.yaml"].valid is False
    assert "0-first.yaml" in results["alpha.yaml"].errors[0].message
