"""``ldap`` authentication (placeholder, being written)."""

from __future__ import annotations

from ferryd.auth.credentials import Credentials, Decision, Outcome
from ferryd.config.models.authentications import LdapAuthenticationModel
from ferryd.lifecycle import Component, State


class LdapAuthentication(Component[LdapAuthenticationModel]):
    async def start(self) -> None:
        self.state = State.RUNNING

    async def stop(self, drain_timeout: float) -> None:
        self.state = State.STOPPED

    async def authenticate(self, credentials: Credentials) -> Decision:
        return Decision(Outcome.FAILED, "not implemented yet")
