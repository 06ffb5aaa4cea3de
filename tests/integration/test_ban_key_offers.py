"""A key offered without its private half proves nothing: it must not forgive failed logins.

SSH asks the server whether a public key would do before the client signs anything
(RFC 4252, 7). Anyone who knows an account's public key (they are often published) can ask.
If that answer cleared the address's failures, a password guesser could reset its count
before every ban. Only a completed login forgives.
"""

from __future__ import annotations

import asyncssh
from asyncssh.public_key import SSHLocalKeyPair
from sshkit import PASSWORD, SshServer, account_section, client_key

BAN_AFTER = 3
POLICY = f"""
source_ip_ban_after_count = {BAN_AFTER}
source_ip_ban_interval = 600
failed_login_delay = 0
"""


async def refused(ssh: SshServer, password: str) -> None:
    try:
        async with await ssh.connect("alice", password=password):
            raise AssertionError("the wrong password logged in")
    except asyncssh.PermissionDenied:
        pass


class PublicHalfOnly(SSHLocalKeyPair):
    """What someone holding only the public key can do: offer it, never sign with it."""

    def sign(self, data: bytes) -> bytes:
        raise ValueError("no private key")

    async def sign_async(self, data: bytes) -> bytes:
        raise ValueError("no private key")


async def offer_public_key_only(ssh: SshServer) -> None:
    """asyncssh asks whether the key would do (the server says yes), then cannot sign."""
    stolen = PublicHalfOnly(client_key(), None, None, None)
    try:
        async with asyncssh.connect(
            "127.0.0.1",
            ssh.port,
            username="alice",
            client_keys=[stolen],
            known_hosts=None,
            preferred_auth="publickey",
        ):
            raise AssertionError("logged in without the private key")
    except asyncssh.PermissionDenied:
        pass


async def test_an_unsigned_key_offer_does_not_reset_the_failure_count(ssh: SshServer) -> None:
    ssh.start(accounts=account_section("alice"), policy=POLICY)
    for _ in range(BAN_AFTER - 1):
        await refused(ssh, "guess")
    await offer_public_key_only(ssh)
    await refused(ssh, "guess")
    assert ssh.process is not None
    ssh.process.wait_for_event(ssh.log, "20257", "Address 127.0.0.1 banned")


async def test_a_completed_key_login_forgives_earlier_failures(ssh: SshServer) -> None:
    ssh.start(accounts=account_section("alice"), policy=POLICY)
    for _ in range(BAN_AFTER - 1):
        await refused(ssh, "guess")
    async with await ssh.connect("alice"):  # the shared client key, signed
        pass
    for _ in range(BAN_AFTER - 1):
        await refused(ssh, "guess")
    async with await ssh.connect("alice", password=PASSWORD):
        pass  # not banned: the key login cleared the first run of failures
