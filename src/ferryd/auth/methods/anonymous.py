"""``anonymous`` authentication: the name ``anonymous`` logs in as one application account.

Whatever password or key the client offers is accepted (RFC 1635 style), and the session runs
as the mapped account with its home, permissions and login checks (disabled, expired, source
address), so audit events name that account. Other names are left to the next method.
"""

from __future__ import annotations

from ferryd.auth.account import AccountRefused, resolve_account
from ferryd.auth.credentials import Credentials, Decision, Outcome
from ferryd.config.models import AccountModel
from ferryd.config.models.authentications import AnonymousAuthenticationModel
from ferryd.lifecycle import Component, Reconfigured, State

ANONYMOUS = "anonymous"


class AnonymousAuthentication(Component[AnonymousAuthenticationModel]):
    async def start(self) -> None:
        self.state = State.RUNNING

    async def stop(self, drain_timeout: float) -> None:
        self.state = State.STOPPED

    async def reconfigure(self, model: AnonymousAuthenticationModel) -> Reconfigured:
        self.model = model
        return Reconfigured.APPLIED

    async def authenticate(self, credentials: Credentials) -> Decision:
        if credentials.username.lower() != ANONYMOUS:
            return Decision(Outcome.UNKNOWN, f"only the name {ANONYMOUS!r} is anonymous")
        configuration = self.configuration
        uuid = self.model.anonymous_account_uuid
        section = configuration.sections.get(("accounts", uuid))
        if section is None or not isinstance(section.model, AccountModel):
            return Decision(Outcome.REJECT, f"anonymous account [accounts/{uuid}] does not exist")
        try:
            account = resolve_account(configuration, uuid, section.model, credentials.peer.address)
        except AccountRefused as refused:
            return Decision(Outcome.REJECT, f"anonymous account {uuid}: {refused}")
        return Decision(Outcome.ACCEPT, "", account)
