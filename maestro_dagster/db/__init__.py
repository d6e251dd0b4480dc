"""Maestro's database: models, sessions, migrations, repositories and the context store.

The seed's entry points are importable from here: ``get_db``, ``RepositoryFactory``,
``initialize_database`` and ``DatabaseWorkflowContextStore``.
"""

from maestro_dagster.db.context_store import DatabaseWorkflowContextStore, WorkflowContext
from maestro_dagster.db.repositories import DefinitionRecord, NodeStateUpdate, RepositoryFactory
from maestro_dagster.db.session import get_db, get_engine, session_scope
from maestro_dagster.states import EventType, NodeStatus, RunKind, WorkflowStatus


def __getattr__(name: str) -> object:
    # Alembic is imported only by what migrates: a run worker, which imports this package, never needs it.
    if name == "initialize_database":
        from maestro_dagster.db.migrate import initialize_database

        return initialize_database
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DatabaseWorkflowContextStore",
    "DefinitionRecord",
    "EventType",
    "NodeStateUpdate",
    "NodeStatus",
    "RepositoryFactory",
    "RunKind",
    "WorkflowContext",
    "WorkflowStatus",
    "get_db",
    "get_engine",
    "initialize_database",
    "session_scope",
]
