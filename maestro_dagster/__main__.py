"""``python -m maestro_dagster`` runs the ``maestro`` CLI."""

from maestro_dagster.cli import main

main()
