"""``ferryd drain``: ask a running node to drain and stop, as SIGTERM does, and wait for it.

The node is found through its pid file (``[server] pid_file``), as this node's configuration
names it, so the same command works on every host sharing a configuration folder.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from ferryd.config.configuration import Configuration


class DrainError(Exception):
    """The node cannot be asked to drain; the message says why and where we looked."""


def running_pid(path: Path, node_name: str) -> int:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        message = f"no pid file {path}: is the node running with this configuration?"
        raise DrainError(message) from None
    except (OSError, UnicodeDecodeError) as error:
        raise DrainError(f"cannot read the pid file {path}: {error}") from None
    if not text.isdigit():
        raise DrainError(f"the pid file {path} does not hold a process id: {text[:40]!r}")
    pid = int(text)
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        raise DrainError(f"process {pid} named by {path} is not running") from None
    shown = b" ".join(argv).decode("utf-8", "replace")[:120]
    if not _is_ferryd_serve(argv):
        raise DrainError(f"process {pid} named by {path} is not ferryd: {shown!r}")
    named = _option(argv, b"--node-name")
    if named is not None and named != node_name.encode():
        # A shared folder's pid file read on the wrong host (containers reuse pids).
        raise DrainError(f"process {pid} named by {path} is another node: {shown!r}")
    return pid


def _option(argv: list[bytes], name: bytes) -> bytes | None:
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(name + b"="):
            return arg[len(name) + 1 :]
    return None


def _is_ferryd_serve(argv: list[bytes]) -> bool:
    """``ferryd serve ...`` (or ``python -m ferryd.cli serve``): a pid reused by any other
    process, even one with ferryd in a path, such as ``tail -F /var/log/ferryd/x.log``."""
    names = [os.path.basename(arg) for arg in argv]
    program = b"ferryd" in names or b"ferryd.cli" in argv
    return program and b"serve" in argv


def drain(configuration: Configuration, wait: bool) -> int:
    """Send SIGTERM to the node and, with ``wait``, return once it has exited."""
    path = configuration.node_path(configuration.server.pid_file)
    pid = running_pid(path, configuration.node_name)
    server = configuration.server
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        raise DrainError(f"process {pid} named by {path} has just exited") from None
    except PermissionError:
        raise DrainError(
            f"not allowed to signal process {pid} named by {path}: run ferryd drain as the"
            " user the node runs as"
        ) from None
    print(
        f"Draining node {configuration.node_name} (pid {pid}): it leaves the load balancer "
        f"now and stops within {server.drain_grace_period + server.drain_timeout:g} seconds."
    )
    if not wait:
        return pid
    deadline = time.monotonic() + server.drain_grace_period + server.drain_timeout + 30
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _zombie(pid):
            print(f"Node {configuration.node_name} stopped.")
            return pid
        time.sleep(0.1)
    raise DrainError(f"process {pid} is still running after the drain deadline")


def _zombie(pid: int) -> bool:
    try:
        return " Z " in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    except (OSError, IndexError):
        return False
