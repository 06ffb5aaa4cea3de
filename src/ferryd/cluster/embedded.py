"""The embedded coordinator: SQLite in WAL mode, every call on one dedicated thread.

SQLite calls block (and may wait on another process's lock for ``busy_timeout``), so they run
on a single worker thread: the event loop never waits on the disk, and calls stay ordered.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ferryd.cluster.coordinator import Ban

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS login_failures (
    scope TEXT NOT NULL, address TEXT NOT NULL, count INTEGER NOT NULL, last REAL NOT NULL,
    PRIMARY KEY (scope, address));
CREATE TABLE IF NOT EXISTS bans (
    scope TEXT NOT NULL, address TEXT NOT NULL, created REAL NOT NULL, until REAL NOT NULL,
    failures INTEGER NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (scope, address));
"""


_BUSY_TIMEOUT = 5.0


def _set_up(db: sqlite3.Connection) -> None:
    """WAL mode and the tables. Nodes starting together on a new file race to switch it to
    WAL, and the loser gets "database is locked" at once, without SQLite's busy wait: retry."""
    deadline = time.monotonic() + _BUSY_TIMEOUT
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(_SCHEMA)


class EmbeddedCoordinator:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ferryd-coordinator")
        self._db: sqlite3.Connection | None = None

    @property
    def location(self) -> str:
        return str(self.path)

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT, isolation_level=None)
            try:
                _set_up(db)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: work(self._connect()))

    async def open(self) -> None:
        """Create the file and tables now, so a bad path fails start-up, not the first login."""
        await self._run(lambda db: None)

    async def count_failure(self, scope: str, address: str, now: float, window: float) -> int:
        def work(db: sqlite3.Connection) -> int:
            with db:
                db.execute("BEGIN IMMEDIATE")
                row = db.execute(
                    "SELECT count, last FROM login_failures WHERE scope=? AND address=?",
                    (scope, address),
                ).fetchone()
                count = row[0] + 1 if row and now - row[1] <= window else 1
                db.execute(
                    "INSERT OR REPLACE INTO login_failures VALUES (?, ?, ?, ?)",
                    (scope, address, count, now),
                )
            return count

        return await self._run(work)

    async def clear_failures(self, scope: str, address: str) -> None:
        await self._run(
            lambda db: db.execute(
                "DELETE FROM login_failures WHERE scope=? AND address=?", (scope, address)
            )
        )

    async def add_ban(self, ban: Ban) -> None:
        def work(db: sqlite3.Connection) -> None:
            with db:
                db.execute("BEGIN IMMEDIATE")
                db.execute(
                    "INSERT OR REPLACE INTO bans VALUES (?, ?, ?, ?, ?, ?)",
                    (ban.scope, ban.address, ban.created, ban.until, ban.failures, ban.reason),
                )
                db.execute(
                    "DELETE FROM login_failures WHERE scope=? AND address=?",
                    (ban.scope, ban.address),
                )

        await self._run(work)

    async def active_bans(self, now: float) -> list[Ban]:
        def work(db: sqlite3.Connection) -> list[Ban]:
            db.execute("DELETE FROM bans WHERE until <= ?", (now,))
            rows = db.execute(
                "SELECT scope, address, created, until, failures, reason FROM bans "
                "ORDER BY created, address"
            ).fetchall()
            return [Ban(*row) for row in rows]

        return await self._run(work)

    async def remove_bans(self, address: str, scope: str | None = None) -> list[Ban]:
        def work(db: sqlite3.Connection) -> list[Ban]:
            with db:
                db.execute("BEGIN IMMEDIATE")
                where, arguments = "address=?", [address]
                if scope is not None:
                    where, arguments = where + " AND scope=?", [*arguments, scope]
                rows = db.execute(
                    "SELECT scope, address, created, until, failures, reason FROM bans "
                    f"WHERE {where}",
                    arguments,
                ).fetchall()
                db.execute(f"DELETE FROM bans WHERE {where}", arguments)
                db.execute(f"DELETE FROM login_failures WHERE {where}", arguments)
            return [Ban(*row) for row in rows]

        return await self._run(work)

    async def close(self) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.close()
            self._db = None

        if self._db is not None:
            await self._run(work)
        self._executor.shutdown(wait=False)
