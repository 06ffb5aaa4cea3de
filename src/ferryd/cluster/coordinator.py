"""What nodes share, behind one interface: failed-login counters and address bans for now.

The embedded implementation keeps them in SQLite (one node, or nodes on one host sharing the
file); the PostgreSQL one (cluster store) will keep the same contract, so a ban made by any
node holds on every node and outlives restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Ban:
    """``scope`` names who banned: ``security-policies/UUID`` or ``authentications/UUID``."""

    scope: str
    address: str
    created: float  # epoch seconds
    until: float  # epoch seconds
    failures: int
    reason: str


class Coordinator(Protocol):
    @property
    def location(self) -> str:
        """Where the shared state lives, for events about it (a file, a database)."""

    async def count_failure(self, scope: str, address: str, now: float, window: float) -> int:
        """Record one more consecutive failure; returns the count within ``window`` seconds."""

    async def clear_failures(self, scope: str, address: str) -> None:
        """A success ends the run of consecutive failures."""

    async def add_ban(self, ban: Ban) -> None:
        """Ban (or extend the ban of) ``ban.address`` in ``ban.scope``; clears its failures."""

    async def active_bans(self, now: float) -> list[Ban]:
        """Bans still in force at ``now``, oldest first."""

    async def remove_bans(self, address: str, scope: str | None = None) -> list[Ban]:
        """Lift the bans of ``address`` (in every scope, or one); returns those lifted."""

    async def close(self) -> None: ...
