"""Scale-out: steps on Celery workers (Dagster's own Celery executor, ``executor.py``) and ``maestro worker``
(``worker.py``). Workers share nothing with the orchestrating process but the broker and the database."""
