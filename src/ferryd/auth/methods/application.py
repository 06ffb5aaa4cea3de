"""``application`` authentication: accounts defined in the configuration itself.

It reads accounts from the node's current configuration at each attempt, so an account added,
disabled or given a new password is in force for the next login without touching the method.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass

from ferryd.auth.passwords import UnsupportedHash, verify_password
from ferryd.config.models import AccountModel, ApplicationAuthenticationModel
from ferryd.lifecycle import Component, Reconfigured, State


class Outcome(enum.Enum):
    ACCEPT = "accept"
    REJECT = "reject"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reason: str = ""
    account: AccountModel | None = None


class ApplicationAuthentication(Component[ApplicationAuthenticationModel]):
    async def start(self) -> None:
        self.state = State.RUNNING

    async def stop(self, drain_timeout: float) -> None:
        self.state = State.STOPPED

    async def reconfigure(self, model: ApplicationAuthenticationModel) -> Reconfigured:
        self.model = model
        return Reconfigured.APPLIED

    async def authenticate_password(self, username: str, password: str) -> Decision:
        configuration = self.configuration
        found = configuration.account_named(username)
        if found is None:
            return Decision(Outcome.UNKNOWN, "no such account")
        _, account = found
        allowed = self.model.allowed_groups
        if allowed and not set(account.group) & set(allowed):
            return Decision(Outcome.UNKNOWN, "account is not in the method's allowed_groups")
        if not account.enabled:
            return Decision(Outcome.REJECT, "account is disabled", account)
        for uuid in account.group:
            group = configuration.group(uuid)
            if group is not None and not group.enabled:
                return Decision(Outcome.REJECT, f"group {uuid} is disabled", account)
        try:
            matched = await asyncio.to_thread(verify_password, account.password, password)
        except UnsupportedHash as error:
            return Decision(Outcome.REJECT, str(error), account)
        if not matched:
            return Decision(Outcome.REJECT, "invalid password", account)
        return Decision(Outcome.ACCEPT, "", account)
