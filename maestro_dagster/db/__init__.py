"""Maestro's database: models, sessions, migrations, repositories and the context store.

The seed's entry points are importable from here: ``get_db``, ``RepositoryFactory``,
``initialize_database`` and ``DatabaseWorkflowContextStore``. Each is imported on first use (PEP 562), so that
importing one submodule (``db.session`` for ``maestro db health``, ``db.repositories`` for ``maestro defs list``)
does not import the others: Alembic only for what migrates, the repositories only for what reads rows.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from maestro_dagster.db.context_store import DatabaseWorkflowContextStore, WorkflowContext
    from maestro_dagster.db.migrate import initialize_database
    from maestro_dagster.db.repositories import DefinitionRecord, NodeStateUpdate, RepositoryFactory
    from maestro_dagster.db.session import get_db, get_engine, session_scope
    from maestro_dagster.states import EventType, NodeStatus, RunKind, WorkflowStatus

#: The names this package exports, by the module that defines them.
_EXPORTS = {
    "maestro_dagster.db.context_store": ("DatabaseWorkflowContextStore", "WorkflowContext"),
    "maestro_dagster.db.migrate": ("initialize_database",),
    "maestro_dagster.db.repositories": ("DefinitionRecord", "NodeStateUpdate", "RepositoryFactory"),
    "maestro_dagster.db.session": ("get_db", "get_engine", "session_scope"),
    "maestro_dagster.states": ("EventType", "NodeStatus", "RunKind", "WorkflowStatus"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # imported once
    return value


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
