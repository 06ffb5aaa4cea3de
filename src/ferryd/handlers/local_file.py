"""``local-file``: audit events as text lines in a rotating file, one per node via {host.name}."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from ferryd.config.configuration import Configuration, Section
from ferryd.config.models import LocalFileHandlerModel
from ferryd.config.models.rotation import RotateOn
from ferryd.config.problems import Problem
from ferryd.config.variables import render_entries
from ferryd.events.event import Event
from ferryd.handlers.base import EventHandler
from ferryd.handlers.rotating_file import RotatingFile, RotationEvent


def log_path(model: LocalFileHandlerModel, configuration: Configuration) -> Path:
    return configuration.node_path(model.path)


def _unwritable(path: Path) -> str | None:
    """Why ``path`` cannot be appended to (creating missing folders), or None."""
    if path.is_dir():
        return f"{path} is a folder"
    if path.exists():
        return None if os.access(path, os.W_OK) else f"{path} is not writable"
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"folder {folder} is not writable"
    return None


#: seconds a SIGHUP waits to reopen a file that a write still holds
REOPEN_WAIT = 5.0


class LocalFileHandler(EventHandler[LocalFileHandlerModel]):
    live_options = EventHandler.live_options | {"entry_content"}
    _file: RotatingFile | None = None

    @classmethod
    def preflight(cls, section: Section, configuration: Configuration) -> list[Problem]:
        assert isinstance(section.model, LocalFileHandlerModel)
        path = log_path(section.model, configuration)
        reason = _unwritable(path)
        if reason is None:
            return []
        origin = section.options.get("path", section.header)
        return [
            Problem(
                origin.path,
                origin.line,
                f"cannot write the log file: {reason}",
                section.title,
                "path",
            )
        ]

    @property
    def path(self) -> Path:
        return log_path(self.model, self.configuration)

    async def open(self) -> None:
        path = self.path
        rotating = RotatingFile(
            str(path),
            rotate_at_size=self.model.rotate_at_size,
            rotate_on=RotateOn.parse(self.model.rotate_on),
            rotate_count=self.model.rotate_count,
            rotate_external=self.model.rotate_external,
        )

        def _open() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            rotating.open()

        try:
            await asyncio.to_thread(_open)
        except OSError as error:
            raise OSError(f"cannot open log file {path}: {error.strerror or error}") from error
        self._file = rotating

    def handle(self, events: list[Event]) -> None:
        assert self._file is not None
        entries = render_entries(self.model.entry_content, events)
        for rotation in self._file.write(entries.encode("utf-8")):
            self._report(rotation)

    def _report(self, rotation: RotationEvent) -> None:
        if rotation.truncated:
            self.emit("20176", source_path=rotation.source_path, size=rotation.size)
        else:
            self.emit(
                "20175", source_path=rotation.source_path, path=rotation.path, size=rotation.size
            )

    async def reopen(self) -> None:
        """SIGHUP: reopen the file (a rotation tool moved it). A write that has not returned
        holds the file; the reload does not wait more than :data:`REOPEN_WAIT` seconds for
        it, and the reopen happens, and is reported, once that write returns."""
        if self._file is None:
            return
        # An executor future, not a task: the pool keeps it alive if it outlasts the wait.
        reopening = asyncio.get_running_loop().run_in_executor(None, self._file.reopen)
        done, _ = await asyncio.wait({reopening}, timeout=REOPEN_WAIT)
        if not done:
            self.emit(
                "20143",
                path=str(self.path),
                reason=f"cannot reopen yet: a write has not returned for {REOPEN_WAIT:g} s"
                " (it is reopened when the write returns)",
            )
            reopening.add_done_callback(self._reopened)
            return
        self._reopened(reopening)

    def _reopened(self, reopening: asyncio.Future[None]) -> None:
        error = reopening.exception()
        if error is None:
            self.emit("20254", path=str(self.path), reason="SIGHUP")
            return
        # Entries wait for the next write, which opens the file again or fails visibly.
        reason = f"cannot reopen: {getattr(error, 'strerror', None) or error}"
        self.emit("20143", path=str(self.path), reason=reason)

    async def close(self) -> None:
        if self._file is not None:
            await asyncio.to_thread(self._file.close)
            self._file = None
