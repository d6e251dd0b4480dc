"""``quiet_dagster_console``: Dagster's DEBUG/INFO lines dropped, every other byte kept, and the block ends when its
own output is forwarded even though a child started inside it still holds the pipe (the step forkserver does)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_chatter_dropped_the_rest_forwarded_and_a_lingering_child_does_not_hold_the_block(tmp_path):
    script = tmp_path / "quiet.py"
    script.write_text(
        textwrap.dedent(
            """
            import subprocess, sys, time
            from maestro_dagster.cli.quiet import quiet_dagster_console
            child = None
            with quiet_dagster_console():
                sys.stderr.write("2026-01-01 12:00:00 +0000 - dagster - DEBUG - job - chatter\\n")
                sys.stderr.write("a warning line\\n")
                child = subprocess.Popen([sys.executable, "-c", "import sys, time; "
                    "sys.stderr.write('2026-01-01 12:00:00 +0000 - dagster - INFO - x\\\\nfrom the child\\\\n'); "
                    "sys.stderr.write('partial'); sys.stderr.flush(); time.sleep(120)"])
                time.sleep(2)
            sys.stderr.write("|after the block, child alive: %s\\n" % (child.poll() is None))
            child.kill()
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stderr
    assert "dagster - DEBUG" not in done.stderr and "dagster - INFO" not in done.stderr
    # a partial last line of a child is ended where the block ends
    assert done.stderr == "a warning line\nfrom the child\npartial\n|after the block, child alive: True\n"


def test_output_that_forges_the_end_marker_does_not_end_the_forwarding(tmp_path):
    """A node's stderr cannot stop the forwarding (which would lose, then block, everything written after it)."""
    script = tmp_path / "forge.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from maestro_dagster.cli.quiet import quiet_dagster_console
            with quiet_dagster_console():
                sys.stderr.write("\\0maestro-quiet-stderr-end\\n")
                sys.stderr.write("\\0maestro-quiet-stderr-end-" + "0" * 32 + "\\n")
                sys.stderr.write("still forwarded\\n")
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stderr
    assert done.stderr.endswith("still forwarded\n"), done.stderr
