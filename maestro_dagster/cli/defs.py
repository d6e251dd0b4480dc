"""``maestro defs``: validate, sync, list and show workflow definitions.

What a command needs is imported in its body: ``list`` reads the rows (settings, SQLAlchemy, the models), never
Dagster; only ``show`` imports the triggers (Dagster), for the names its schedules and sensors have there.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from maestro_dagster.names import job_name

app = typer.Typer(help="Workflow definitions: validate, sync, list, show.", no_args_is_help=True)


@app.command()
def validate(files: list[Path] = typer.Argument(..., help="YAML or JSON definition files.")) -> None:
    """Validate definition files; print every problem; exit 1 if any file is invalid."""
    from maestro_dagster.policy import ORIGIN_REPOSITORY, DefinitionPolicy
    from maestro_dagster.settings import get_settings
    from maestro_dagster.spec import validate_file

    policy = DefinitionPolicy.for_origin(get_settings(), ORIGIN_REPOSITORY)
    bad = 0
    for path in files:
        report = validate_file(path, policy)
        if report.ok and report.spec is not None:  # ok: spec is set
            typer.echo(f"ok       {path}  ({report.workflow_id}, {len(report.spec.nodes)} nodes)")
        else:
            bad += 1
            typer.secho(f"invalid  {path}: {len(report.errors)} problem(s)", fg=typer.colors.RED)
            for problem in report.errors:
                typer.echo(f"  - {problem}")
    if bad:
        raise typer.Exit(1)


@app.command()
def sync(directory: Path = typer.Option(None, "--dir", help="Default: MAESTRO_DEFS_DIR (workflow_defs).")) -> None:
    """Upsert every definition file into workflow_definitions (new version only when content changed)."""
    from maestro_dagster.db.session import get_db
    from maestro_dagster.defs_store import sync_directory
    from maestro_dagster.settings import get_settings

    settings = get_settings()
    directory = directory or settings.defs_dir
    if not directory.is_dir():
        typer.secho(f"error: {directory} is not a directory (set MAESTRO_DEFS_DIR or pass --dir)", err=True)
        raise typer.Exit(1)
    with get_db(settings, immediate=True) as session:
        results = sync_directory(session, directory, settings)
    for r in results:
        state = "valid" if r.valid else "INVALID"
        change = f"v{r.version} {'stored' if r.changed else 'unchanged'}" if r.version else "not stored"
        typer.echo(f"{state:8} {r.workflow_id or '?':30} {change:16} {r.source}")
        for problem in r.errors:
            typer.echo(f"  - {problem}")
    invalid = sum(not r.valid for r in results)
    typer.echo(f"{len(results)} file(s), {invalid} invalid")


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Stored definitions: id, version, nodes, valid?, errors."""
    from maestro_dagster.db.repositories import RepositoryFactory
    from maestro_dagster.db.session import get_db

    with get_db() as session:
        rows = RepositoryFactory(session).workflow.list(limit=100_000)
        items: list[dict[str, Any]] = [
            {
                "id": r.id,
                "version": r.version,
                "nodes": len(r.nodes or {}),
                "valid": r.is_valid,
                "job": job_name(r.id) if r.is_valid else None,
                "errors": [e.get("message") for e in r.validation_errors or []],
                "source": r.source,
            }
            for r in sorted(rows, key=lambda r: r.id)
        ]
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    typer.echo(f"{'ID':32} {'VER':>4} {'NODES':>5}  VALID  JOB / ERRORS")
    for item in items:
        tail = item["job"] if item["valid"] else f"{len(item['errors'])} error(s)"
        typer.echo(
            f"{item['id']:32} {item['version']:>4} {item['nodes']:>5}  {'yes' if item['valid'] else 'NO ':5}  {tail}"
        )
        for error in item["errors"]:
            typer.echo(f"    - {error}")


@app.command()
def show(workflow_id: str) -> None:
    """One stored definition (latest version) as JSON, with its versions and errors."""
    from maestro_dagster.db.repositories import RepositoryFactory
    from maestro_dagster.db.session import get_db

    with get_db() as session:
        repos = RepositoryFactory(session)
        row = repos.workflow.require(workflow_id)
        document = {
            "id": row.id,
            "version": row.version,
            "valid": row.is_valid,
            "job": job_name(row.id) if row.is_valid else None,
            "content_hash": row.content_hash,
            "source": row.source,
            "errors": row.validation_errors,
            "versions": [
                {"version": v.version, "valid": v.is_valid, "created_at": v.created_at.isoformat()}
                for v in repos.workflow.list_versions(workflow_id)
            ],
            "schedules": _with_names(row, "schedules"),
            "sensors": _with_names(row, "sensors"),
            "definition": row.definition,
        }
    typer.echo(json.dumps(document, indent=2, default=str))


def _with_names(row, key: str) -> list[dict]:
    """The row's schedules or sensors, each with the Dagster name it has (valid definitions only)."""
    from maestro_dagster.defs_store import load_spec
    from maestro_dagster.triggers import schedule_name, sensor_name

    entries = list(row.definition.get(key) or [])
    if not row.is_valid:
        return entries
    spec = load_spec(row)
    name = schedule_name if key == "schedules" else sensor_name
    return [{"dagster_name": name(spec, i), **entry} for i, entry in enumerate(entries)]
