"""Migrations that warn before they drop data (issue 12, point 4), on SQLite and PostgreSQL.

``maestro db downgrade`` to a revision whose downgrade drops tables holding rows refuses (exit 1) without ``--yes``
and names each table with its row count; ``downgrade base`` likewise. ``maestro mirror sync`` exits 1 when a run
stays unmirrored, as ``maestro mirror verify`` does (after a downgrade and upgrade, a run's definition is gone).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

from _maestro_cli import assert_clean_error, run_cli
from sqlalchemy import func, inspect, select

from maestro_dagster.db import migrate
from maestro_dagster.db.models import ApiToken, AuditLog, WorkflowDefinition
from maestro_dagster.db.session import dispose_engines, get_db, get_engine

ECHO = {"executor": "maestro_examples.nodes:echo"}
FLOW = {"id": "guarded_flow", "nodes": {"a": ECHO, "b": ECHO}, "edges": [{"source": "a", "target": "b"}]}


def _audit(actor: str) -> AuditLog:
    return AuditLog(actor=actor, role="admin", action="POST /x", outcome="ok", status_code=200, details={})


def _count(settings, model) -> int:
    with get_db(settings) as session:
        return session.scalar(select(func.count()).select_from(model))


def test_a_downgrade_that_drops_tables_with_rows_refuses_without_yes(db) -> None:
    with get_db(db) as session:
        session.add_all([_audit("alice"), _audit("bob")])
        session.add(ApiToken(token_sha256="0" * 64, name="ci", role="viewer", created_at=datetime.now(UTC)))
    head = migrate.current_revision(db)

    refused = run_cli("db", "downgrade", "0002")
    line = assert_clean_error(refused, "Refusing to downgrade", "table audit_log (2 rows)", "table api_tokens (1 row)")
    assert "--yes" in line and "node_approvals" not in line  # an empty table loses nothing
    assert migrate.current_revision(db) == head
    assert _count(db, AuditLog) == 2 and _count(db, ApiToken) == 1

    confirmed = run_cli("db", "downgrade", "0002", "--yes")
    assert confirmed.returncode == 0, confirmed.stdout + confirmed.stderr
    assert "dropped table api_tokens (1 row), table audit_log (2 rows)" in confirmed.stdout
    assert migrate.current_revision(db) == "0002"


def test_downgrade_base_names_every_table_with_rows(db) -> None:
    from maestro_dagster.defs_store import store_definition

    with get_db(db) as session:
        store_definition(session, FLOW, db, source="test")
        session.add(_audit("carol"))
    refused = run_cli("db", "downgrade", "base")
    line = assert_clean_error(refused, "table workflow_definitions (1 row)", "table audit_log (1 row)")
    assert "workflow_executions" not in line
    assert _count(db, WorkflowDefinition) == 1

    assert run_cli("db", "downgrade", "base", "--yes").returncode == 0
    assert migrate.current_revision(db) is None


def test_a_downgrade_of_empty_tables_needs_no_confirmation(db) -> None:
    done = run_cli("db", "downgrade", "base")
    assert done.returncode == 0, done.stdout + done.stderr
    assert migrate.current_revision(db) is None


def test_an_unknown_revision_is_a_clear_error(db) -> None:
    assert_clean_error(run_cli("db", "downgrade", "nope"), "Alembic refused", "maestro db history")


def test_a_dropped_column_with_values_is_named(db, tmp_path, monkeypatch) -> None:
    """Any migration is covered: one more revision (added here, on top of the project's head) adds a column."""
    head = migrate.head_revision()
    migrations = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    (migrations / "versions" / "9999_audit_note.py").write_text(
        '"""audit note"""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        f'revision = "9999"\ndown_revision = "{head}"\nbranch_labels = None\ndepends_on = None\n\n\n'
        "def upgrade():\n"
        '    with op.batch_alter_table("audit_log") as batch:\n'
        '        batch.add_column(sa.Column("note", sa.Text(), nullable=True))\n\n\n'
        "def downgrade():\n"
        '    with op.batch_alter_table("audit_log") as batch:\n'
        '        batch.drop_column("note")\n'
    )
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", migrations)
    migrate.upgrade(db)
    dispose_engines()
    with get_db(db) as session:
        session.add_all([_audit("dan"), _audit("erin"), _audit("fay")])
    with get_engine(db).begin() as conn:
        conn.exec_driver_sql("UPDATE audit_log SET note = 'kept?' WHERE actor <> 'fay'")

    losses = migrate.downgrade_losses(db, "-1")
    assert [str(loss) for loss in losses] == ["column audit_log.note (2 values)"]
    migrate.downgrade(db, "-1")
    dispose_engines()
    columns = {c["name"] for c in inspect(get_engine(db)).get_columns("audit_log", schema=db.schema_name)}
    assert "note" not in columns


def test_mirror_sync_exits_1_when_a_run_stays_unmirrored(maestro_env) -> None:
    maestro_env.add_definition(FLOW)
    result = maestro_env.run("guarded_flow")
    assert result.success
    assert run_cli("db", "downgrade", "base", "--yes").returncode == 0
    assert run_cli("db", "upgrade").returncode == 0

    synced = run_cli("mirror", "sync")
    assert synced.returncode == 1, synced.stdout + synced.stderr
    assert f"run {result.run_id}: not mirrored: workflow definition not stored" in synced.stderr
    assert "maestro defs sync" in synced.stderr
    verified = run_cli("mirror", "verify")
    assert verified.returncode == 1 and f"run {result.run_id}: not mirrored" in verified.stdout

    maestro_env.add_definition(FLOW)  # what the hint says: store the definition again, then sync
    again = run_cli("mirror", "sync")
    assert again.returncode == 0, again.stdout + again.stderr
    verified = run_cli("mirror", "verify")
    assert verified.returncode == 0, verified.stdout


def test_mirror_sync_of_an_unknown_run_id_exits_1(maestro_env) -> None:
    synced = run_cli("mirror", "sync", "--run", "no-such-run-id")
    assert synced.returncode == 1, synced.stdout + synced.stderr
    assert "run no-such-run-id: not mirrored: no such Dagster run" in synced.stderr
