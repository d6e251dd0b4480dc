"""The fast tier of ``tests/_fast_db.py`` for the pure database tests of this folder (``fast_db``, ``db_session``,
``fast_settings``); tests that migrate, start processes or need a database of their own use ``db`` / ``empty_db``."""

from _fast_db import db_session, fast_db, fast_postgresql, fast_settings, fast_sqlite

__all__ = ["db_session", "fast_db", "fast_postgresql", "fast_settings", "fast_sqlite"]
