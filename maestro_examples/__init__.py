"""Example custom node executors for maestro-dagster workflows and tests.

``maestro_examples`` is in the default executor allowlist (``MAESTRO_EXECUTOR_ALLOWLIST``), so a
definition can name e.g. ``executor: maestro_examples.nodes:echo``. See :mod:`maestro_examples.nodes`.
"""
