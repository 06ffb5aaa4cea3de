"""Append-only file with size, schedule and external rotation (SFTPPlus ``local-file``).

This is the synchronous engine behind the ``local-file`` event handler.  The
handler writes from its own thread and reopens (SIGHUP) and closes from worker
threads: those may overlap, so each public call holds the file's own lock.  Every
failure is a plain :class:`OSError` for the handler to turn into an event; the
object stays usable afterwards because a closed file is simply reopened by the
next :meth:`RotatingFile.write`.

Rotation is only ever checked right before a write: a file that nobody writes
to is never rotated, which keeps the engine free of timers and threads.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from ferryd.config.models.rotation import RotateOn

__all__ = ["RotateOn", "RotatingFile", "RotationEvent"]


class RotationEvent(NamedTuple):
    """One rotation, for the caller to report (SFTPPlus events 20175 / 20176)."""

    source_path: str
    path: str
    size: int
    truncated: bool


class RotatingFile:
    """Binary append-only file that rotates itself before writes when due.

    ``rotate_at_size`` (bytes, 0 = off) is ignored when ``rotate_on`` is set.
    ``rotate_count`` is 0 to keep every rotated file, N to keep the N newest,
    or -1 to truncate in place.  ``rotate_external`` makes each write check
    (one ``stat``) whether another tool moved the file, and follow it.
    """

    def __init__(
        self,
        path: str,
        *,
        rotate_at_size: int = 0,
        rotate_on: RotateOn | None = None,
        rotate_count: int = 0,
        rotate_external: bool = False,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        if rotate_at_size < 0:
            raise ValueError(f"rotate_at_size must be >= 0, got {rotate_at_size}")
        if rotate_count < -1:
            raise ValueError(f"rotate_count must be >= -1, got {rotate_count}")
        self._path = path
        self._rotate_at_size = 0 if rotate_on is not None else rotate_at_size
        self._rotate_on = rotate_on
        self._rotate_count = rotate_count
        self._rotate_external = rotate_external
        self._clock = clock
        self._file: io.FileIO | None = None
        self._size = 0
        self._ident: tuple[int, int] = (0, 0)
        self._next_rotation: datetime | None = None
        self._lock = threading.Lock()

    @property
    def path(self) -> str:
        """The live file path."""
        return self._path

    @property
    def size(self) -> int:
        """Bytes in the live file, as tracked since it was opened."""
        return self._size

    def open(self) -> None:
        """Open (creating the file, not its folder) and start the rotation schedule."""
        with self._lock:
            self._close()
            self._open_file()
            if self._rotate_on is not None:
                self._next_rotation = self._rotate_on.next_after(self._clock())

    def reopen(self) -> None:
        """Reopen ``path``, e.g. on SIGHUP after logrotate moved the file.

        The rotation schedule is kept: it belongs to the handler, not the file.
        """
        with self._lock:
            self._reopen()

    def _reopen(self) -> None:
        self._close()
        self._ensure_open()

    def close(self) -> None:
        """Close the file; safe to call repeatedly."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()

    def write(self, data: bytes) -> list[RotationEvent]:
        """Rotate if due, then append ``data`` whole; return the rotations done.

        An entry is never split across files: size rotation happens before a
        write that would overflow, so an oversized entry lands in a fresh file.
        """
        if not data:
            return []
        with self._lock:
            return self._write(data)

    def _write(self, data: bytes) -> list[RotationEvent]:
        self._ensure_open()
        if self._rotate_external:
            self._follow_external()
        events: list[RotationEvent] = []
        if self._size_due(len(data)):
            events.append(self._rotate(self._shift_numbered))
        elif self._time_due():
            events.append(self._rotate(self._time_target))
            self._advance_schedule()
        file = self._file
        assert file is not None  # _rotate reopened it or raised
        try:
            _write_all(file, data)
        except OSError:
            # Drop the descriptor so the next write reopens and re-reads the size.
            with contextlib.suppress(OSError):
                self._close()
            raise
        self._size += len(data)
        return events

    # -- opening ---------------------------------------------------------

    def _open_file(self) -> None:
        file = open(self._path, "ab", buffering=0)  # noqa: SIM115 - kept open across calls
        try:
            stat = os.fstat(file.fileno())
        except OSError:
            file.close()
            raise
        self._file = file
        self._size = stat.st_size
        self._ident = (stat.st_dev, stat.st_ino)

    def _ensure_open(self) -> None:
        if self._file is None:
            self._open_file()
        if self._rotate_on is not None and self._next_rotation is None:
            self._next_rotation = self._rotate_on.next_after(self._clock())

    def _follow_external(self) -> None:
        """Reopen when ``path`` no longer names the open file."""
        try:
            stat = os.stat(self._path)
        except OSError:
            self._reopen()
            return
        if (stat.st_dev, stat.st_ino) != self._ident:
            self._reopen()
        else:
            # Picks up copy-and-truncate rotation done by other tools.
            self._size = stat.st_size

    # -- deciding --------------------------------------------------------

    def _size_due(self, incoming: int) -> bool:
        limit = self._rotate_at_size
        return limit > 0 and self._size > 0 and self._size + incoming > limit

    def _time_due(self) -> bool:
        if self._next_rotation is None or self._clock() < self._next_rotation:
            return False
        if self._size > 0:
            return True
        # Nothing to rotate: move on, so content written from now on is not
        # later rotated under this (already past) instant's name.
        self._advance_schedule()
        return False

    def _advance_schedule(self) -> None:
        if self._rotate_on is not None:
            self._next_rotation = self._rotate_on.next_after(self._clock())

    # -- rotating --------------------------------------------------------

    def _rotate(self, make_room: Callable[[], str]) -> RotationEvent:
        """Move (or truncate) the live file and open a fresh one.

        Retention clean-up and shifting run before the live file is touched, so
        a failure there leaves it open and intact and the next write retries.
        """
        size = self._size
        file = self._file
        assert file is not None
        if self._rotate_count == -1:
            os.ftruncate(file.fileno(), 0)
            self._size = 0
            return RotationEvent(self._path, "", size, True)
        target = make_room()
        self._close()
        os.rename(self._path, target)
        self._open_file()
        return RotationEvent(self._path, target, size, False)

    def _shift_numbered(self) -> str:
        """Shift ``file.1`` -> ``file.2``... dropping those past ``rotate_count``."""
        keep = self._rotate_count
        free = 1
        while os.path.lexists(self._numbered(free)):
            free += 1
        if keep > 0:
            for index in range(keep, free):
                os.remove(self._numbered(index))
            free = min(free, keep)
        for index in range(free - 1, 0, -1):
            os.rename(self._numbered(index), self._numbered(index + 1))
        return self._numbered(1)

    def _numbered(self, index: int) -> str:
        return f"{self._path}.{index}"

    def _time_target(self) -> str:
        """Name after the instant reached; prune so that ``rotate_count`` remain."""
        assert self._rotate_on is not None and self._next_rotation is not None
        if self._rotate_count > 0:
            existing = self._time_rotated()
            for name in existing[: max(0, len(existing) - self._rotate_count + 1)]:
                os.remove(name)
        base = f"{self._path}.{self._next_rotation.strftime(self._rotate_on.name_format)}"
        target, suffix = base, 0
        while os.path.lexists(target):
            suffix += 1
            target = f"{base}.{suffix}"
        return target

    def _time_rotated(self) -> list[str]:
        """Existing date-named rotated files, oldest first."""
        folder, base = os.path.split(self._path)
        pattern = re.compile(re.escape(base) + r"\.(\d{4}-\d{2}-\d{2}(?:T\d{6})?)(?:\.(\d+))?")
        found: list[tuple[str, int, str]] = []
        for name in os.listdir(folder or "."):
            if match := pattern.fullmatch(name):
                found.append((match.group(1), int(match.group(2) or 0), name))
        found.sort()
        return [os.path.join(folder, name) for _, _, name in found]


def _write_all(file: io.FileIO, data: bytes) -> None:
    """Write every byte: an unbuffered write may be partial (e.g. a disk filling up)."""
    view = memoryview(data)
    while view:
        written = file.write(view)
        if not written:
            raise OSError(f"no progress writing to {file.name!r}")
        view = view[written:]
