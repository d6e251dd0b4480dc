"""Jobs and a writer process for the event storage tests (importable by Dagster's step processes).

``chain`` is ``first -> flaky -> last`` on the multiprocess executor (each step in its own process, all writing
the run's shard): ``flaky`` fails while the file named by ``MAESTRO_TEST_FLAKY_FILE`` does not exist, so a first
run fails and a re-execution from failure, once the file is there, succeeds. Run as a script, this module is a
writer: it stores ``count`` log events for a run id through the instance of a Dagster home, prints ``stored`` and
waits for its standard input to close before it exits (so its connection stays open meanwhile).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import dagster as dg
from dagster._core.events.log import EventLogEntry


@dg.op
def first() -> int:
    return 1


@dg.op
def flaky(value: int) -> int:
    if not Path(os.environ["MAESTRO_TEST_FLAKY_FILE"]).exists():
        raise RuntimeError("flaky: not yet")
    return value + 1


@dg.op
def last(value: int) -> int:
    return value + 1


@dg.job(executor_def=dg.multiprocess_executor)
def chain() -> None:
    last(flaky(first()))


def log_entry(run_id: str, message: str) -> EventLogEntry:
    return EventLogEntry(
        error_info=None, level="INFO", user_message=message, run_id=run_id, timestamp=time.time(), dagster_event=None
    )


def write(home: str, run_id: str, count: int, tag: str, start_file: str | None) -> None:
    with dg.DagsterInstance.from_config(home) as instance:
        while start_file and not Path(start_file).exists():  # every writer starts at once
            time.sleep(0.01)
        for i in range(count):
            instance.event_log_storage.store_event(log_entry(run_id, f"{tag}-{i}"))
        print("stored", flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    write(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else None)
