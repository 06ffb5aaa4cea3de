"""``standard-stream``: events on standard output, for containers and ``make run``."""

from __future__ import annotations

import io
import os
import sys
from typing import TextIO

from ferryd.config.models import StandardStreamHandlerModel
from ferryd.config.variables import render_entries
from ferryd.events.event import Event
from ferryd.handlers.base import EventHandler


class StandardStreamHandler(EventHandler[StandardStreamHandlerModel]):
    live_options = EventHandler.live_options | {"entry_content"}
    # The console is for people watching, not the audit trail: 20 ms later is invisible to
    # them, and a session moving small files then costs one write per 20 ms, not per event.
    linger = 0.02

    async def open(self) -> None:
        """Standard output is always there; what Python buffered for it goes out first."""
        sys.stdout.flush()

    def handle(self, events: list[Event]) -> None:
        # On the handler's thread: a pipe that is never read blocks only this handler.
        _write(sys.stdout, render_entries(self.model.entry_content, events))


def _write(stream: TextIO, text: str) -> None:
    """Straight to the descriptor when there is one: a write stuck in a full pipe then
    holds no lock of Python's stdout object, which the interpreter takes at exit."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):  # replaced by a non-file
        stream.write(text)
        stream.flush()
        return
    data = memoryview(text.encode("utf-8", "backslashreplace"))
    while data:
        data = data[os.write(fd, data) :]
