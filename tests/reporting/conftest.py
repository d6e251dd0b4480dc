"""The fast database tier (``db_session``) and the hand-made reporting dataset (``report_data``) for this folder."""

from _fast_db import db_session, fast_db, fast_postgresql, fast_settings, fast_sqlite
from _report_data import report_data

__all__ = ["db_session", "fast_db", "fast_postgresql", "fast_settings", "fast_sqlite", "report_data"]
