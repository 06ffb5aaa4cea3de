"""Small helpers shared by the high-availability tests: the guide's blocks, daemons.

The configuration the tests run (haproxy.cfg, keepalived.conf, server.ini, override files) is
read from ``docs/high-availability.md``: each block follows a ``<!-- e2e: NAME -->`` marker,
and the tests only substitute ports, addresses and paths (:func:`doc_block`), so the guide
cannot drift from what is tested. Polling, free ports and atomic saves come from the
integration helpers (``tests.integration.polling`` and ``tests.integration.sshkit``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.unit.docblocks import doc_blocks

REPOSITORY = Path(__file__).resolve().parents[2]
GUIDE = REPOSITORY / "docs" / "high-availability.md"


def doc_block(name: str, replace: Mapping[str, str] | None = None) -> str:
    """The block ``name`` of the guide with each ``replace`` key (which must occur) replaced."""
    blocks = doc_blocks(GUIDE, lang=None, marker=name)
    assert blocks, f"no block marked <!-- e2e: {name} --> in {GUIDE}"
    assert len(blocks) == 1, f"block {name!r} is marked twice in {GUIDE}"
    text = blocks[0]
    for old, new in (replace or {}).items():
        assert old in text, f"{old!r} is not in block {name!r} of {GUIDE}: update the test"
        text = text.replace(old, new)
    return text


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
