"""Noticing that files changed, on any filesystem: a watch on their folders plus a poll.

A watch on a file follows its inode, so a file replaced by rename (how editors and tools save
atomically) is never reported: the folders are watched and events filtered by path. Network
filesystems send no notification for another host's writes, so a poll backs the watch up.
Either way the owner's ``changed`` callback decides, by comparing :func:`file_stamp`s, whether
anything really changed; the watch only says when to look.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path

from watchfiles import Change, awatch

Stamp = tuple[int, int, int]

_WATCH_RETRY = 5.0  # seconds before watching folders that were missing (or vanished) again
_STOP_GRACE = 2.0  # seconds stop() waits for the watcher thread to notice the stop event


def file_stamp(path: Path) -> Stamp | None:
    """``(st_mtime_ns, st_size, st_ino)`` of ``path``, None when it cannot be seen.

    Cheap enough for every login; the inode catches a rename-over that kept size and time.
    """
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_mtime_ns, found.st_size, found.st_ino)


class FileWatch:
    """Calls ``changed()`` when one of ``files()`` may have changed, and every
    ``poll_interval`` seconds (0: notifications only)."""

    def __init__(
        self,
        files: Callable[[], Collection[Path]],
        changed: Callable[[], Awaitable[None]],
        poll_interval: float,
        name: str,
    ) -> None:
        self._files = files
        self._changed = changed
        self._interval = poll_interval
        self._name = name
        self._stopping = asyncio.Event()
        self._run_stop = asyncio.Event()  # ends one watch of one set of folders
        self._watched: set[str] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        # The watch and the poll may fire together: one look at a time, so the second sees
        # what the first did (a reload applied, or a file refused) instead of repeating it.
        self._looking = asyncio.Lock()

    def start(self) -> None:
        self._stopping.clear()
        self._watcher = asyncio.create_task(self._watch(), name=f"watch {self._name}")
        self._start_poller()

    def retarget(self) -> None:
        """Watch again if ``files()`` now names other files (a reload changed them)."""
        if {os.path.abspath(f) for f in self._files()} != self._watched:
            self._run_stop.set()

    async def stop(self) -> None:
        self._stopping.set()
        self._run_stop.set()  # the watcher thread checks it every step
        tasks = [t for t in (self._watcher, self._poller) if t is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=_STOP_GRACE)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._watcher = self._poller = None

    async def set_poll_interval(self, seconds: float) -> None:
        if seconds == self._interval:
            return
        self._interval = seconds
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        if not self._stopping.is_set():
            self._start_poller()

    def _start_poller(self) -> None:
        self._poller = None
        if self._interval > 0:
            self._poller = asyncio.create_task(self._poll(), name=f"poll {self._name}")

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    async def _look(self) -> None:
        """One look; the owner reports its own failures, and one must not end the watching."""
        async with self._looking:
            with contextlib.suppress(Exception):
                await self._changed()

    async def _poll(self) -> None:
        while not await self._stopped_within(self._interval):
            await self._look()

    async def _watch(self) -> None:
        while not self._stopping.is_set():
            self._run_stop = asyncio.Event()
            files = {os.path.abspath(f) for f in self._files()}
            self._watched = files
            folders = sorted({os.path.dirname(f) for f in files})

            def ours(change: Change, path: str, files: set[str] = files) -> bool:
                return os.path.abspath(path) in files

            # A missing or vanished folder ends the watch; polling covers until it is back.
            with contextlib.suppress(OSError, RuntimeError):
                changes = awatch(
                    *folders,
                    watch_filter=ours,
                    debounce=500,
                    step=30,
                    stop_event=self._run_stop,
                    recursive=False,
                )
                async with contextlib.aclosing(changes):
                    async for _ in changes:
                        await self._look()
            if self._run_stop.is_set() and not self._stopping.is_set():
                continue  # retargeted: watch the new folders at once
            if await self._stopped_within(_WATCH_RETRY):
                return
