"""A webserver + daemon stack whose code location is a probe module in a temp directory, for the warm-worker tests.

The module (``maestro_probe_location``) is Maestro's repository plus one line appended to a log at import,
``<pid> <version>``, so a test can tell which code a run worker imported, and change that code on disk. The
helpers read the daemon's process tree: its code servers (``dagster api grpc``; the daemon starts a new one every
60 s and its workspace moves to it once it has loaded, then the old one exits) and its run workers.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import yaml
from _e2e_home import BIN, LOCATION, REPOSITORY, Stack
from _e2e_procs import descendants, free_port, wait_for

PROBE_MODULE = "maestro_probe_location"
PROBE_SOURCE = """\"\"\"A test's code location: Maestro's repository, and a log line naming this code's version.\"\"\"
import os

from maestro_dagster.definitions import maestro  # noqa: F401

VERSION = {version!r}
with open(os.environ["MAESTRO_PROBE_LOG"], "a") as log:
    log.write(f"{{os.getpid()}} {{VERSION}}\\n")
"""
RELOAD_MUTATION = """
mutation Reload($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) { __typename
  ... on WorkspaceLocationEntry { name loadStatus } ... on PythonError { message } } }
"""


def cmdline(pid: int) -> bytes:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    return b""


class ProbeStack(Stack):
    """``Stack`` with its own workspace file: location ``maestro`` loaded from the probe module."""

    def __init__(self, work: Path, database_url: str) -> None:
        super().__init__(work, database_url)
        self.location_dir = work / "location"
        self.location_dir.mkdir(parents=True, exist_ok=True)
        self.module_file = self.location_dir / f"{PROBE_MODULE}.py"
        self.probe_log = work / "probe.log"
        self.workspace = work / "workspace.yaml"
        self.env["MAESTRO_PROBE_LOG"] = str(self.probe_log)
        self.write_code("v1")
        entry = {"module_name": PROBE_MODULE, "attribute": REPOSITORY, "working_directory": str(self.location_dir),
                 "location_name": LOCATION}  # fmt: skip
        self.workspace.write_text(yaml.safe_dump({"load_from": [{"python_module": entry}]}))

    def write_code(self, version: str) -> None:
        self.module_file.write_text(PROBE_SOURCE.format(version=version))

    def start_servers(self) -> None:
        self.port = free_port()
        ws = str(self.workspace)
        self.webserver = self.start("webserver", str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p",
                                    str(self.port), "-w", ws)  # fmt: skip
        self.daemon = self.start("daemon", str(BIN / "dagster-daemon"), "run", "-w", ws)
        wait_for(self._location_loaded, 180, "the webserver to serve location 'maestro'", interval=0.5)
        wait_for(self._sensor_ticked, 180, "the daemon's first sensor tick", interval=0.5)

    def reload_location(self) -> None:
        """What "Reload code location" in the Dagster UI does (the webserver's GraphQL mutation)."""
        data = self.graphql(RELOAD_MUTATION, {"name": LOCATION}, timeout=180)["reloadRepositoryLocation"]
        assert data["__typename"] == "WorkspaceLocationEntry", data
        wait_for(self._location_loaded, 180, "the reloaded location to be served", interval=0.5)

    # -- what the daemon runs -------------------------------------------------------------------------------------
    def daemon_code_servers(self) -> set[int]:
        return {p for p in descendants(self.daemon.popen.pid) if b"api\0grpc" in cmdline(p)}

    def daemon_workers(self) -> set[int]:
        return {p for p in descendants(self.daemon.popen.pid) if b"maestro_dagster.launcher.worker" in cmdline(p)}

    def versions(self) -> dict[int, list[str]]:
        """pid -> the versions of the probe module that process imported."""
        seen: dict[int, list[str]] = {}
        for line in self.probe_log.read_text().splitlines() if self.probe_log.exists() else []:
            pid, version = line.split()
            seen.setdefault(int(pid), []).append(version)
        return seen

    def wait_daemon_swap(self, timeout: float = 300) -> set[int]:
        """Until the daemon has replaced every code server it runs now (its 60 s workspace refresh): a new one runs
        and the old ones have exited, which they do once the daemon's workspace no longer uses them (their heartbeat
        stops), so the daemon launches with the new one's ``server_id`` by then."""
        before = self.daemon_code_servers()
        assert before, "the daemon runs no code server"

        def swapped() -> set[int]:
            now = self.daemon_code_servers()
            return now - before if now - before and not now & before else set()

        return wait_for(swapped, timeout, "the daemon to replace its code server", interval=1.0)

    def launch_messages(self, run_id: str) -> list[str]:
        return [e.message for e in self.instance.all_logs(run_id) if e.message and "Maestro run worker" in e.message]
