"""Small helpers shared by the high-availability tests: ports, polling, daemons, doc blocks.

The configuration the tests run (haproxy.cfg, keepalived.conf, server.ini, override files) is
read from ``docs/high-availability.md``: each block follows a ``<!-- e2e: NAME -->`` marker,
and the tests only substitute ports, addresses and paths (:func:`doc_block`), so the guide
cannot drift from what is tested.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

REPOSITORY = Path(__file__).resolve().parents[2]
GUIDE = REPOSITORY / "docs" / "high-availability.md"
_BLOCK = re.compile(
    r"^<!-- e2e: (?P<name>[\w./-]+) -->\n+```[^\n]*\n(?P<body>.*?)^```",
    flags=re.DOTALL | re.MULTILINE,
)


def doc_blocks() -> dict[str, str]:
    """Every marked block of the guide, by name."""
    found: dict[str, str] = {}
    for match in _BLOCK.finditer(GUIDE.read_text(encoding="utf-8")):
        name = match.group("name")
        assert name not in found, f"block {name!r} is marked twice in {GUIDE}"
        found[name] = match.group("body")
    return found


def doc_block(name: str, replace: Mapping[str, str] | None = None) -> str:
    """The block ``name`` of the guide with each ``replace`` key (which must occur) replaced."""
    blocks = doc_blocks()
    assert name in blocks, f"no block marked <!-- e2e: {name} --> in {GUIDE}"
    text = blocks[name]
    for old, new in (replace or {}).items():
        assert old in text, f"{old!r} is not in block {name!r} of {GUIDE}: update the test"
        text = text.replace(old, new)
    return text


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(predicate: Callable[[], T], *, timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``predicate`` until it returns something truthy; return it or fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


async def async_wait_for(
    predicate: Callable[[], Awaitable[T]], *, timeout: float, what: str, interval: float = 0.05
) -> T:
    """:func:`wait_for` for coroutines: the event loop keeps running between polls."""
    deadline = time.monotonic() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}")
        await asyncio.sleep(interval)


def replace_atomically(path: Path, text: str) -> None:
    """Save ``path`` as editors do: write a temporary file beside it and rename it over."""
    temporary = path.with_name(f".{path.name}.saving")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Daemon:
    """A background process (haproxy, keepalived, ...) with its output in one log file."""

    def __init__(self, name: str, args: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.args = list(args)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def is_running(self) -> bool:
        return self.process.poll() is None

    def diagnostics(self) -> str:
        return (
            f"{self.name}: {self.args}\nexit status: {self.process.poll()}\n"
            f"--- output ---\n{self.output()[-6000:]}"
        )

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 5.0) -> int | None:
        """Signal the process (only it, by its pid); SIGKILL it if it outlives ``timeout``."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=timeout)
        return self.process.poll()
