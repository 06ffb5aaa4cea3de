"""``application`` authentication: accounts defined in the configuration itself.

It reads accounts from the node's current configuration at each attempt, so an account added,
disabled or given a new password or key is in force for the next login without touching the
method, while sessions already open keep the account they logged in with. ``local-file``
checks its own file's accounts with the same :func:`authenticate_configured`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncssh

from ferryd.auth import hashing
from ferryd.auth.account import Account, AccountRefused, resolve_account
from ferryd.auth.authorized_keys import read_authorized_keys
from ferryd.auth.credentials import Credentials, Decision, Outcome
from ferryd.auth.methods.stateless import StatelessMethod
from ferryd.auth.passwords import UnsupportedHash
from ferryd.config.configuration import Configuration
from ferryd.config.models import DEFAULT_GROUP, AccountModel, ApplicationAuthenticationModel


async def authenticate_configured(
    configuration: Configuration,
    credentials: Credentials,
    allowed_groups: Sequence[str] = (),
    strict_group_access: bool = False,
) -> Decision:
    """Check ``credentials`` against the ``[accounts/...]`` of ``configuration``.

    An account outside ``allowed_groups`` is unknown here (the next method may know it); with
    ``strict_group_access`` only the allowed groups apply to its session.
    """
    found = configuration.account_named(credentials.username)
    if found is None:
        return Decision(Outcome.UNKNOWN, "no such account")
    section, model = found
    if allowed_groups:
        member_of = [g for g in model.group or (DEFAULT_GROUP,) if g in allowed_groups]
        if not member_of:
            return Decision(Outcome.UNKNOWN, "account is not in the method's allowed_groups")
        if strict_group_access:
            model = model.model_copy(update={"group": tuple(member_of)})
    try:
        account = resolve_account(configuration, section.uuid, model, credentials.peer.address)
    except AccountRefused as refused:
        return Decision(Outcome.REJECT, str(refused))
    not_allowed = account.refuses(credentials.type)
    if not_allowed is not None:  # before hashing; the chain checks every method's accounts too
        return Decision(Outcome.REJECT, not_allowed)
    if credentials.type == "password":
        return await _password(model, account, credentials.password)
    return await _key(account, credentials)


async def _password(model: AccountModel, account: Account, password: str) -> Decision:
    if not model.password:
        return Decision(Outcome.REJECT, "account has no password")
    try:
        matched = await hashing.verify(model.password, password)
    except UnsupportedHash as error:
        return Decision(Outcome.REJECT, str(error))
    if not matched:
        return Decision(Outcome.REJECT, "invalid password")
    return Decision(Outcome.ACCEPT, "", account)


async def _key(account: Account, credentials: Credentials) -> Decision:
    try:
        keys = await asyncio.to_thread(read_authorized_keys, account)
        offered = asyncssh.import_public_key(credentials.public_key)
    except (OSError, ValueError) as error:
        return Decision(Outcome.REJECT, str(error))
    if not keys.allow(offered, credentials.peer.address):
        skipped = "".join(f"; skipped {line}" for line in keys.skipped)
        return Decision(Outcome.REJECT, f"public key not authorized{skipped}")
    return Decision(Outcome.ACCEPT, "", account)


class ApplicationAuthentication(StatelessMethod[ApplicationAuthenticationModel]):
    async def authenticate(self, credentials: Credentials) -> Decision:
        return await authenticate_configured(
            self.configuration,
            credentials,
            self.model.allowed_groups,
            self.model.strict_group_access,
        )
