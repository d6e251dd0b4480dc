"""``maestro dev``: the Dagster UI and daemon for this project, with DAGSTER_HOME prepared.

Dagster runs workflow definitions (untrusted input), so it is started without the API's secrets
(``settings.API_SECRET_VARIABLES``, e.g. ``MAESTRO_API_TOKENS``): the webserver, daemon, code servers and run
workers never hold them; only an API process does.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import typer


def dev(
    host: str = typer.Option("127.0.0.1", help="Interface the UI listens on."),
    port: int = typer.Option(3000, help="UI port."),
) -> None:
    """Run `dagster dev` (webserver + daemon) on workspace.yaml, after checking the database is migrated."""
    from maestro_dagster.db.migrate import require_current
    from maestro_dagster.instance import PROJECT_ROOT, get_instance  # Dagster: imported by the command only
    from maestro_dagster.settings import get_settings, without_api_secrets

    settings = get_settings()
    require_current(settings)
    get_instance(settings).dispose()  # Dagster's storage created once, before the webserver and daemon race to
    home = settings.dagster_home
    dagster = shutil.which("dagster") or str(Path(sys.executable).with_name("dagster"))
    typer.echo(f"DAGSTER_HOME={home}; UI at http://{host}:{port}")
    args = [dagster, "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-h", host, "-p", str(port)]
    os.execvpe(dagster, args, without_api_secrets(os.environ))
