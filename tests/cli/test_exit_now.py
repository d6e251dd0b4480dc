"""``maestro`` ends without the interpreter's teardown, but with its output, its exit code and its atexit handlers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def _run(body: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)


def test_output_exit_code_and_atexit_handlers_survive(tmp_path):
    marker = tmp_path / "atexit.txt"
    done = _run(
        f"""
        import atexit, sys
        from maestro_dagster.cli import exit_now
        atexit.register(lambda: open({str(marker)!r}, "w").write("ran"))
        print("x" * 100000, end="")  # more than one buffer of output, still unflushed
        sys.stderr.write("to stderr")
        exit_now(3)
        print("never")
        """,
        tmp_path,
    )
    assert done.returncode == 3
    assert done.stdout == "x" * 100000 and done.stderr == "to stderr"
    assert marker.read_text() == "ran"


def test_a_running_non_daemon_thread_is_waited_for(tmp_path):
    marker = tmp_path / "thread.txt"
    done = _run(
        f"""
        import threading, time
        from maestro_dagster.cli import exit_now
        def work():
            time.sleep(1)
            open({str(marker)!r}, "w").write("finished")
        threading.Thread(target=work).start()
        exit_now(0)
        """,
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "finished"


def test_a_message_code_goes_to_stderr_with_status_1(tmp_path):
    done = _run("from maestro_dagster.cli import exit_now\nexit_now('something went wrong')\n", tmp_path)
    assert (done.returncode, done.stderr.strip()) == (1, "something went wrong")


def test_a_command_leaves_no_sqlite_wal_behind(tmp_path):
    """Its database connections are closed before the fast exit, as the interpreter's teardown would close them."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAESTRO_", "DAGSTER_"))}
    env["MAESTRO_HOME"] = str(tmp_path / "home")
    for command in (["db", "upgrade"], ["db", "health"]):
        done = subprocess.run(
            [sys.executable, "-m", "maestro_dagster", *command], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert not list((tmp_path / "home").glob("*.db-wal")), command
