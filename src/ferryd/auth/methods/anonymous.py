"""``anonymous`` authentication: the name ``anonymous`` logs in as one application account.

Whatever password or key the client offers is accepted (RFC 1635 style), and the session runs
as the mapped account with its home, permissions and login checks (disabled, expired, source
address), so audit events name that account. Other names are left to the next method.
"""

from __future__ import annotations

from ferryd.auth.account import AccountRefused, resolve_account
from ferryd.auth.credentials import Credentials, Decision, Outcome
from ferryd.auth.methods.stateless import StatelessMethod
from ferryd.config.models import AccountModel
from ferryd.config.models.authentications import AnonymousAuthenticationModel

ANONYMOUS = "anonymous"


class AnonymousAuthentication(StatelessMethod[AnonymousAuthenticationModel]):
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
