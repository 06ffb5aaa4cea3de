"""Deprecated ``deny-username`` and ``ip-time-ban`` methods, kept for SFTPPlus configurations.

Both are screens placed first in a method list: they refuse or pass (silently, without the
"does not know" event), never accept. ``ip-time-ban`` counts failures and bans through the
same guard and coordinator as security policies, under its own scope, so its bans also
outlive restarts and show in ``ferryd bans list`` (SFTPPlus kept them in memory only).
"""

from __future__ import annotations

from ferryd.auth.credentials import Credentials, Decision, Outcome
from ferryd.auth.methods.stateless import StatelessMethod
from ferryd.config.models.authentications import (
    DenyUsernameAuthenticationModel,
    IpTimeBanAuthenticationModel,
)


class DenyUsernameAuthentication(StatelessMethod[DenyUsernameAuthenticationModel]):
    screening = True

    async def authenticate(self, credentials: Credentials) -> Decision:
        if credentials.username.lower() in self.model.usernames:
            return Decision(
                Outcome.REJECT, "the name is in the method's usernames", event_id="20136"
            )
        return Decision(Outcome.UNKNOWN)


class IpTimeBanAuthentication(StatelessMethod[IpTimeBanAuthenticationModel]):
    screening = True

    @property
    def scope(self) -> str:
        return f"authentications/{self.context.uuid}"

    async def start(self) -> None:
        if self.context.guard is None:
            raise RuntimeError("no ban store is available on this node")
        await super().start()

    async def authenticate(self, credentials: Credentials) -> Decision:
        guard = self.context.guard
        ban = guard.banned(self.scope, credentials.peer.address) if guard else None
        if ban is not None:
            return Decision(Outcome.REJECT, "the address is banned", event_id="20005")
        return Decision(Outcome.UNKNOWN)

    async def observe(self, credentials: Credentials, decision: Decision) -> None:
        """Called by the chain with the final decision of every attempt."""
        guard = self.context.guard
        if guard is None:
            return
        await guard.observe(
            self.scope,
            credentials,
            decision,
            self.model.ban_after_count,
            self.model.ban_interval,
            self.emit,
        )

    async def completed(self, address: str) -> None:
        """Called by the chain once a login from ``address`` is complete."""
        if self.context.guard is not None:
            await self.context.guard.succeeded(self.scope, address)
