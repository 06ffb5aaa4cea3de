"""A server under test: how to start it, where it listens, and where its files land."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.proc import descendants

PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


@dataclass
class Server:
    """One configured server; ``start``/``stop`` may run many times on the same configuration.

    ``remote_root`` is the benchmark folder as an SFTP client names it; ``local_root`` is the
    same folder on this machine, so uploads can be checked and removed without another session.
    ``password_user`` is the login name for password logins, or None when they are unavailable.
    """

    name: str
    command: list[str]
    port: int
    user: str
    remote_root: str
    local_root: Path
    log: Path
    password_user: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        """Process id of the running server (the root of its process tree)."""
        if self.process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.process.pid

    def remote(self, name: str) -> str:
        """Path of ``name`` inside the server's benchmark folder, as SFTP must spell it."""
        return f"{self.remote_root.rstrip('/')}/{name}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self.local_root.mkdir(parents=True, exist_ok=True)
        self.process = start_process(self.command, self.log)
        try:
            wait_for_port(self.port, self.process, self.log, self.name)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server and every session process it forked.

        sshd's session processes call setsid(), so signalling the listener's process group
        does not reach them; they are found in the process tree and stopped one by one.
        """
        if self.process is None:
            return
        sessions = descendants(self.process.pid)
        stop_process(self.process)
        for pid in sessions:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        self.process = None


@contextlib.contextmanager
def running(servers: Sequence[Server]) -> Iterator[list[Server]]:
    """Fresh server processes for one case, stopped afterwards whatever happens."""
    with contextlib.ExitStack() as stack:
        for server in servers:
            server.start()
            stack.callback(server.stop)
        yield list(servers)


def free_port() -> int:
    """Ask the kernel for an unused port; the tiny race until the server binds is acceptable."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 30) -> str:
    """Last lines of a server log, so a failure explains itself."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, name: str) -> None:
    """Block until the server accepts TCP connections, failing fast if it exits instead."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on port {port} in {START_TIMEOUT:.0f} s")


def become_subreaper() -> None:
    """Make this process adopt its orphaned descendants (prctl PR_SET_CHILD_SUBREAPER).

    Run in the server process just before it executes the server (the setting survives
    execve). Without it, CPU time is lost: after a non-root login, sshd's privileged
    monitor exits without reaping the session's unprivileged sshd, which init then reaps,
    so neither its CPU time nor its sftp-server's ever reaches the listener's cutime/cstime.
    As a subreaper, the listener adopts and reaps such orphans itself (sshd reaps any child).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def start_process(command: Sequence[str | Path], log: Path) -> subprocess.Popen[bytes]:
    """Start a server in its own session so Ctrl-C reaches only us and we stop it in order."""
    with log.open("ab") as stream:
        return subprocess.Popen(
            [str(part) for part in command],
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=become_subreaper,
        )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop a server and the session children it forked (sshd forks one per connection)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_checked(command: Sequence[str | Path], stdin: str | None = None) -> str:
    """Run a setup command; its output is only interesting when it fails."""
    result = subprocess.run(
        [str(part) for part in command],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise RuntimeError(f"{' '.join(map(str, command))} failed:\n{result.stdout}{result.stderr}")
    return result.stdout
