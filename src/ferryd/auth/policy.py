"""Security policies (reference 3.7) and the ban machinery that legacy ``ip-time-ban`` shares.

Ban state lives in the coordinator, so bans outlive restarts and, with a shared store, hold on
every node. The guard keeps a copy of the active bans in memory, refreshed every second and at
once for bans this node makes, because a connection must be judged before anything async can
run (``block_source_at_connection``); a ban lifted elsewhere (``ferryd bans remove``) is
noticed at the next refresh and announced with event 50008.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ferryd.auth.credentials import Credentials, Decision, Outcome
from ferryd.cluster.coordinator import Ban, Coordinator
from ferryd.config.configuration import Configuration
from ferryd.config.models import SecurityPolicyModel
from ferryd.events.bus import EventBus


class SecurityGuard:
    def __init__(self, coordinator: Coordinator, bus: EventBus) -> None:
        self.coordinator = coordinator
        self.bus = bus
        self._bans: dict[tuple[str, str], Ban] = {}
        # Bans this node made, by the change count when made: a refresh whose read began
        # before them must not drop them (or call them lifted).
        self._changes = 0
        self._made: dict[tuple[str, str], int] = {}
        # Where this node counted failures, until when the count matters: only there does a
        # success clear anything, so a successful login costs no store write (a count made
        # on another node stays until its window passes). Expired entries go at each
        # refresh, so a scan from many addresses does not grow this for ever.
        self._counted: dict[tuple[str, str], float] = {}

    def banned(self, scope: str, address: str) -> Ban | None:
        ban = self._bans.get((scope, address))
        if ban is None or ban.until <= time.time():
            return None
        return ban

    async def refresh(self) -> None:
        """Reload the active bans; announce those lifted before they were due."""
        now = time.time()
        changes = self._changes
        bans = await self.coordinator.active_bans(now)
        fresh = {(b.scope, b.address): b for b in bans}
        for key, ban in self._bans.items():
            if key in fresh:
                continue
            if self._made.get(key, -1) >= changes:
                fresh[key] = ban  # made while the read was under way
            elif ban.until > now + 1:
                self.bus.emit(
                    "50008",
                    address=ban.address,
                    scope=ban.scope,
                    by="an administrator (ferryd bans remove, or another node)",
                )
        self._bans = fresh
        self._made = {k: v for k, v in self._made.items() if v >= changes}
        self._counted = {k: until for k, until in self._counted.items() if until > now}

    async def run(self, interval: float = 1.0) -> None:
        """Keep the cache fresh until cancelled. A store error keeps the bans known so far
        and retries at the next interval; it is said once (20270), and again when a read
        works (20271), since meanwhile bans made or lifted on other nodes are not seen."""
        failing_since: float | None = None
        while True:
            try:
                await self.refresh()
            except Exception as error:
                if failing_since is None:
                    failing_since = time.monotonic()
                    self.bus.emit(
                        "20270",
                        location=self.coordinator.location,
                        reason=str(error) or repr(error),
                    )
            else:
                if failing_since is not None:
                    duration = f"{time.monotonic() - failing_since:.1f}"
                    self.bus.emit("20271", location=self.coordinator.location, duration=duration)
                    failing_since = None
            await asyncio.sleep(interval)

    async def failed(
        self, scope: str, address: str, after_count: int, interval: float, reason: str
    ) -> Ban | None:
        """Count a failure; returns the new ban when this failure reaches ``after_count``."""
        if after_count <= 0:
            return None
        now = time.time()
        self._counted[(scope, address)] = now + interval
        count = await self.coordinator.count_failure(scope, address, now, interval)
        if count < after_count:
            return None
        ban = Ban(scope, address, now, now + interval, count, reason)
        await self.coordinator.add_ban(ban)
        self._bans[(scope, address)] = ban
        self._made[(scope, address)] = self._changes
        self._changes += 1
        return ban

    async def observe(
        self,
        scope: str,
        credentials: Credentials,
        decision: Decision,
        after_count: int,
        interval: float,
        emit: Emit,
    ) -> None:
        """The one bookkeeping of an attempt, for a policy and an ``ip-time-ban`` method
        alike: a failed guess is counted, and a ban it causes is announced (20257)."""
        if not counts_as_failure(credentials, decision):
            return
        address = credentials.peer.address
        ban = await self.failed(scope, address, after_count, interval, decision.reason)
        if ban is not None:
            announce_ban(emit, ban)

    async def succeeded(self, scope: str, address: str) -> None:
        """A completed login (not merely an accepted key offer, which proves nothing)."""
        if self._counted.pop((scope, address), 0.0) > time.time():
            await self.coordinator.clear_failures(scope, address)


class Screen(enum.Enum):
    EXEMPT = "exempt"  # an `allow` rule matched: no other check of the policy applies
    CHECK = "check"  # go on: ask the methods, count a failure


@dataclass(frozen=True, slots=True)
class Refusal:
    event_id: str  # 20005 (address blocked) or 20136 (name denied)
    reason: str


@dataclass(frozen=True, slots=True)
class ActivePolicy:
    """The policy a service applies, with the name its events and bans carry."""

    uuid: str
    model: SecurityPolicyModel

    @property
    def scope(self) -> str:
        return f"security-policies/{self.uuid}"

    def screen_address(self, guard: SecurityGuard, address: str) -> Screen | Refusal:
        """The checks a bare connection can get: the address filter and bans."""
        verdict = (
            self.model.source_ip_filter.match(address) if self.model.source_ip_filter else None
        )
        if verdict is True:
            return Screen.EXEMPT
        if verdict is False:
            return Refusal("20005", "denied by the policy's source_ip_filter")
        ban = guard.banned(self.scope, address)
        if ban is not None:
            remaining = max(0, round(ban.until - time.time()))
            return Refusal("20005", f"banned for {remaining} more seconds")
        return Screen.CHECK

    def screen_login(self, guard: SecurityGuard, address: str, username: str) -> Screen | Refusal:
        screen = self.screen_address(guard, address)
        if screen is Screen.CHECK and self.model.denies_username(username):
            return Refusal("20136", "the name is in the policy's deny_usernames")
        return screen


def active_policy(configuration: Configuration, uuid: str) -> ActivePolicy | None:
    if not uuid:
        return None
    section = configuration.sections.get(("security-policies", uuid))
    if section is None or not isinstance(section.model, SecurityPolicyModel):
        return None
    return ActivePolicy(uuid, section.model)


Emit = Callable[..., Any]


def counts_as_failure(credentials: Credentials, decision: Decision) -> bool:
    """A guessed password that did not work; not key offers, not server-side faults."""
    if decision.event_id == "20005":  # refused for a ban already in force
        return False
    return credentials.type == "password" and decision.outcome in (
        Outcome.REJECT,
        Outcome.UNKNOWN,
    )


def announce_ban(emit: Emit, ban: Ban) -> None:
    emit(
        "20257",
        address=ban.address,
        scope=ban.scope,
        failures=ban.failures,
        interval=f"{ban.until - ban.created:g}",
        reason=ban.reason,
    )
