"""A real HAProxy for the tests: started in the foreground on loopback, read through its
admin socket (the stats CSV gives each server's UP/DOWN state), stopped at teardown.

The configuration text comes from the test (in practice from the guide's haproxy.cfg block
with the ports, addresses and socket path replaced); :meth:`HAProxy.start` checks it with
``haproxy -c`` first so a mistake reads as HAProxy's own message.
"""

from __future__ import annotations

import csv
import io
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from hakit import Daemon
from tests.integration.polling import wait_for

EXECUTABLE = "haproxy"


def available() -> str | None:
    """Why HAProxy cannot be used here, or None."""
    if shutil.which(EXECUTABLE) is None:
        return "haproxy is not installed (scripts/install-system-deps.sh installs it)"
    return None


@dataclass(frozen=True)
class ServerState:
    """One ``server`` line of a backend as the stats page shows it."""

    name: str
    status: str  # "UP", "DOWN", "UP 1/2" (going down), "DOWN 1/2" (coming up), "MAINT"...
    check_status: str  # "L7OK", "L7STS" (wrong HTTP status), "L4CON" (refused)...

    @property
    def up(self) -> bool:
        """HAProxy sends new connections to it (also while a failed check is being confirmed)."""
        return self.status.startswith("UP")

    @property
    def down(self) -> bool:
        return self.status.startswith("DOWN")


class HAProxy:
    """``haproxy -f CFG -db`` with an admin socket at ``admin_socket``."""

    def __init__(self, root: Path, config_text: str, admin_socket: Path) -> None:
        self.root = root
        self.config_path = root / "haproxy.cfg"
        self.admin_socket = admin_socket
        self.daemon: Daemon | None = None
        root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(config_text, encoding="utf-8")

    def start(self, timeout: float = 10.0) -> HAProxy:
        check = subprocess.run(
            [EXECUTABLE, "-c", "-f", str(self.config_path)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert check.returncode == 0, (
            f"haproxy refuses {self.config_path}:\n{check.stdout}{check.stderr}"
        )
        self.admin_socket.unlink(missing_ok=True)
        self.daemon = Daemon(
            "haproxy", [EXECUTABLE, "-f", str(self.config_path), "-db"], self.root / "haproxy.log"
        )

        def answers() -> bool:
            assert self.daemon is not None and self.daemon.is_running(), self.diagnostics()
            try:
                return "Name: HAProxy" in self.command("show info")
            except OSError:
                return False

        wait_for(answers, timeout=timeout, what="HAProxy's admin socket")
        return self

    def command(self, line: str) -> str:
        """One admin socket command and its whole answer (the socket closes after it)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(5)
            connection.connect(str(self.admin_socket))
            connection.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")

    def servers(self, backend: str) -> dict[str, ServerState]:
        """The state of every server of ``backend``, by name."""
        text = self.command("show stat").lstrip("# ")
        states: dict[str, ServerState] = {}
        for row in csv.DictReader(io.StringIO(text)):
            if row.get("pxname") != backend or row.get("svname") in ("FRONTEND", "BACKEND"):
                continue
            states[row["svname"]] = ServerState(row["svname"], row["status"], row["check_status"])
        return states

    def state(self, backend: str, server: str) -> ServerState:
        states = self.servers(backend)
        assert server in states, f"no server {server} in backend {backend}: {states}"
        return states[server]

    def wait_up(self, backend: str, servers: list[str], timeout: float = 10.0) -> None:
        """Until every server in ``servers`` is fully UP (its checks passed ``rise`` times)."""

        def all_up() -> bool:
            states = self.servers(backend)
            return all(name in states and states[name].status == "UP" for name in servers)

        try:
            wait_for(all_up, timeout=timeout, what=f"{servers} UP in HAProxy")
        except AssertionError as error:
            raise AssertionError(
                f"{error}: {self.servers(backend)}\n{self.diagnostics()}"
            ) from None

    def wait_down(self, backend: str, server: str, timeout: float = 10.0) -> float:
        """Until ``server`` is DOWN; the monotonic time it was first seen so."""

        def is_down() -> float:
            return time.monotonic() if self.state(backend, server).down else 0.0

        return wait_for(is_down, timeout=timeout, what=f"{server} DOWN in HAProxy", interval=0.02)

    def log(self) -> str:
        return self.daemon.output() if self.daemon is not None else ""

    def diagnostics(self) -> str:
        return self.daemon.diagnostics() if self.daemon is not None else "haproxy not started"

    def stop(self) -> None:
        """Teardown: SIGTERM (hard stop), SIGKILL if it lingers."""
        if self.daemon is not None:
            self.daemon.stop(signal.SIGTERM)
