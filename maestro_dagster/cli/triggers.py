"""``maestro triggers list``: every schedule and sensor of the stored definitions, with its state.

Dagster and the triggers are imported in the command's body, not when the app is defined.
"""

from __future__ import annotations

import json

import typer

app = typer.Typer(help="Schedules and sensors declared in workflow definitions.", no_args_is_help=True)


def _states(instance) -> dict[str, str]:
    """Dagster's stored on/off state by instigator name (absent: the definition's default applies)."""
    states = {}
    for state in instance.all_instigator_state():
        states[state.origin.instigator_name] = state.status.value
    return states


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Name, kind, workflow, what triggers it, and whether it is running."""
    from maestro_dagster.db.session import get_db
    from maestro_dagster.instance import get_instance
    from maestro_dagster.settings import get_settings
    from maestro_dagster.triggers.build import specs_with_triggers, triggers_for

    settings = get_settings()
    with get_db(settings) as session:
        specs = specs_with_triggers(session)
    instance = get_instance(settings)
    try:
        stored = _states(instance)
    finally:
        instance.dispose()
    items = []
    for spec in specs:
        schedules, sensors = triggers_for(spec)
        for i, schedule in enumerate(schedules):
            cron = spec.schedules[i]
            default = schedule.default_status.value
            items.append(
                {
                    "name": schedule.name,
                    "kind": "schedule",
                    "workflow_id": spec.id,
                    "what": f"{cron.cron} ({cron.timezone})",
                    "state": stored.get(schedule.name, default),
                }
            )
        for i, sensor in enumerate(sensors):
            s = spec.sensors[i]
            what = {
                "file": lambda s: f"{s.directory}/{s.pattern}",
                "workflow_completed": lambda s: f"{s.workflow_id} -> {'/'.join(s.statuses)}",
                "request_queue": lambda s: "execution_requests rows",
            }[s.type](s)
            items.append(
                {
                    "name": sensor.name,
                    "kind": f"sensor:{s.type}",
                    "workflow_id": spec.id,
                    "what": what,
                    "state": stored.get(sensor.name, sensor.default_status.value),
                }
            )
    if as_json:
        typer.echo(json.dumps(items, indent=2))
        return
    typer.echo(f"{'NAME':45} {'KIND':28} {'STATE':8} WHAT")
    for item in items:
        typer.echo(f"{item['name']:45} {item['kind']:28} {item['state']:8} {item['what']}")
    typer.echo(
        f"{len(items)} trigger(s). Turn one on in the UI, or: dagster schedule start NAME / dagster sensor start NAME"
    )
