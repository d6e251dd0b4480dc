"""``maestro run`` and ``maestro resume``: execute through Dagster here, then print the mirrored execution.

Dagster, the executions and the settings are imported in the commands' bodies, not when the app is defined.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from maestro_dagster.errors import ValidationError


def _context(requirement: str | None, context: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if context:
        try:
            text = Path(context[1:]).read_text(encoding="utf-8") if context.startswith("@") else context
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(
                f"--context {context}: cannot read the file ({getattr(exc, 'strerror', None) or exc}); pass a JSON "
                "object, or @path/to/context.json naming a readable UTF-8 file"
            ) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"--context is not valid JSON ({exc}); pass a JSON object or @file.json") from exc
        if not isinstance(data, dict):
            raise ValidationError('--context must be a JSON object, e.g. \'{"requirement": "..."}\'')
    from maestro_dagster import executions

    return executions.initial_context(data, requirement)


def _shown(path: str) -> str:
    """A path as printed: relative to the current directory when it is inside it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def print_execution(execution_id: str) -> None:
    """The execution as the mirrored tables hold it."""
    from maestro_dagster.db.repositories import RepositoryFactory
    from maestro_dagster.db.session import get_db

    with get_db() as session:
        repos = RepositoryFactory(session)
        ex = repos.execution.require(execution_id)
        typer.echo(f"execution  {ex.id}")
        typer.echo(f"workflow   {ex.workflow_id} (version {ex.workflow_version})")
        typer.echo(
            f"status     {ex.status.value}   progress {ex.progress_percent}% "
            f"({ex.completed_nodes}/{ex.total_nodes} completed, {ex.failed_nodes} failed)"
        )
        if ex.error_message:
            typer.echo(f"error      {ex.error_node_id or ''}: {ex.error_message}")
        runs = sorted(ex.runs, key=lambda r: r.created_at)
        typer.echo("runs       " + ", ".join(f"{r.run_id[:8]} ({r.kind.value}, {r.status.value})" for r in runs))
        latest_run = {node.node_id: node.last_run_id for node in repos.node_state.get_by_execution(execution_id)}
        artifacts: dict[str, list[str]] = {}
        for art in repos.artifact.list_by_execution(execution_id):
            if art.dagster_run_id in (None, latest_run.get(art.node_id)):  # the files of the node's latest run
                shown = _shown(art.file_path or art.uri or art.name)
                artifacts.setdefault(art.node_id, []).append(f"{shown} ({art.size_bytes} B)")
        typer.echo(f"\n{'NODE':30} {'STATUS':10} {'ATTEMPTS':>8} {'DURATION':>9} {'QUALITY':>7}  ARTIFACTS")
        for node in repos.node_state.get_by_execution(execution_id):
            duration = f"{node.duration_seconds:.2f}s" if node.duration_seconds is not None else "-"
            quality = f"{node.quality_score:.2f}" if node.quality_score is not None else "-"
            files = artifacts.get(node.node_id, [])
            typer.echo(
                f"{node.node_id:30} {node.status.value:10} {node.attempt_count:>8} {duration:>9} "
                f"{quality:>7}  {files[0] if files else ''}"
            )
            for extra in files[1:]:
                typer.echo(f"{'':70}{extra}")
        events = repos.event.list_by_execution(execution_id, limit=100_000)
        typer.echo(f"\nevents     {len(events)} in execution_events")


def _before_dagster(in_process: bool) -> None:
    """What a run's process does before it imports Dagster: drop the API's secrets (it runs nodes, in process or
    as its step processes' parent), export the Dagster instance's environment, and start the step forkserver, which
    imports Dagster and the code location while this process does the same (``step_server.py``)."""
    from maestro_dagster.instance import prepare_dagster_env
    from maestro_dagster.settings import drop_api_secrets, get_settings

    drop_api_secrets()
    prepare_dagster_env(get_settings())
    if not in_process:
        from maestro_dagster.step_server import start_step_server

        start_step_server()


def run(
    workflow_id: str = typer.Argument(..., help="The workflow id (see `maestro defs list`)."),
    requirement: str = typer.Option(None, "--requirement", "-r", help="Sets initial_context.requirement."),
    context: str = typer.Option(None, "--context", "-c", help="initial_context as JSON, or @file.json."),
    in_process: bool = typer.Option(False, "--in-process", help="Run all nodes in this process (no subprocesses)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Dagster's debug log of the run."),
) -> None:
    """Start an execution of WORKFLOW_ID through Dagster, wait for it, and print it from the tables."""
    from maestro_dagster.cli.quiet import quiet_dagster_console

    initial_context = _context(requirement, context)
    with quiet_dagster_console(not verbose):  # before the step forkserver starts: it keeps the stderr it gets
        _before_dagster(in_process)
        from maestro_dagster.executions.local import run_workflow
        from maestro_dagster.instance import get_instance
        from maestro_dagster.settings import get_settings

        instance = get_instance(get_settings())
        try:
            result = run_workflow(
                instance, workflow_id, initial_context, in_process=in_process, log_level=None if verbose else "WARNING"
            )
        finally:
            instance.dispose()
    print_execution(result.execution_id)
    if not result.success:
        raise typer.Exit(1)


def resume(
    execution_id: str = typer.Argument(..., help="A failed, paused or cancelled execution (--from: also completed)."),
    from_node: str = typer.Option(
        None, "--from", help="Replay this node and everything downstream of it; the other nodes' outputs are reused."
    ),
    in_process: bool = typer.Option(False, "--in-process", help="Run all nodes in this process."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Dagster's debug log of the run."),
) -> None:
    """Re-execute an execution from failure (Dagster re-execution), into the same execution; with --from NODE,
    replay NODE and its descendants (Dagster's step selection), also of a completed execution."""
    from maestro_dagster.cli.quiet import quiet_dagster_console

    with quiet_dagster_console(not verbose):  # before the step forkserver starts: it keeps the stderr it gets
        _before_dagster(in_process)
        from maestro_dagster.executions.local import resume_workflow
        from maestro_dagster.instance import get_instance
        from maestro_dagster.settings import get_settings

        instance = get_instance(get_settings())
        try:
            result = resume_workflow(
                instance,
                execution_id,
                from_node=from_node,
                in_process=in_process,
                log_level=None if verbose else "WARNING",
            )
        finally:
            instance.dispose()
    print_execution(result.execution_id)
    if not result.success:
        raise typer.Exit(1)


def approve(
    execution_id: str = typer.Argument(..., help="The execution."),
    node_id: str = typer.Argument(..., help="A human_review node of it."),
    reject: bool = typer.Option(False, "--reject", help="Reject instead of approve (the node fails)."),
    comment: str = typer.Option(None, "--comment", "-m", help="The reviewer's comment."),
    by: str = typer.Option(None, "--by", help="Who decides (default: the OS user)."),
) -> None:
    """Approve (or reject) a human_review node that is waiting for a decision."""
    import getpass

    from maestro_dagster import executions
    from maestro_dagster.settings import get_settings

    executions.approve(get_settings(), execution_id, node_id, not reject, comment, by or getpass.getuser())
    typer.echo(f"{execution_id} {node_id}: {'rejected' if reject else 'approved'}")
