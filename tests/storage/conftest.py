"""The fast tier of ``tests/_fast_db.py`` (``db_session`` and what it needs) for the ``node_outputs`` tests; tests
that run Dagster here use ``db`` / ``empty_db`` of ``tests/conftest.py``."""

from _fast_db import db_session, fast_db, fast_postgresql, fast_settings, fast_sqlite

__all__ = ["db_session", "fast_db", "fast_postgresql", "fast_settings", "fast_sqlite"]
