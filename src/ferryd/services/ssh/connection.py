"""One SSH connection: login through the authentication chain, then SFTP/SCP sessions.

asyncssh calls the hooks here (``validate_password``, ``validate_public_key``...); each login
attempt becomes one chain run and one event, and a successful login prepares the account's
home before any session can start.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import asyncssh

from ferryd.auth import chain
from ferryd.auth.account import Account
from ferryd.auth.credentials import Credentials, CredentialType, Decision, Outcome
from ferryd.events.event import AccountRef, ComponentRef
from ferryd.fs.account_fs import AccountFS
from ferryd.services.proxy_protocol import Arrival
from ferryd.services.ssh.sftp import SftpSession

if TYPE_CHECKING:
    from ferryd.services.ssh.service import SshService


class SshConnection(asyncssh.SSHServer):
    def __init__(self, service: SshService, arrival: Arrival) -> None:
        self._service = service
        self._conn: asyncssh.SSHServerConnection | None = None
        self._arrival = arrival
        self.peer = arrival.peer
        self.opened = time.monotonic()
        self._last_activity = time.monotonic()
        self._idle_timer: asyncio.TimerHandle | None = None
        self._key_decisions: dict[str, tuple[Decision, ComponentRef | None]] = {}
        self._accepted: tuple[Decision, ComponentRef | None, CredentialType] | None = None
        self.account: Account | None = None
        self._refused = False
        self._ready: asyncio.Future[AccountFS | None] | None = None
        self._close_reason = "closed by the client"

    # -- connection --------------------------------------------------------------------

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        if self._arrival.via is not None:
            # What asyncssh reports as the peer (to SFTP sessions too) is the real client.
            conn.set_extra_info(peername=(self.peer.address, self.peer.port))
        service = self._service
        if chain.refused_at_connection(service, self.peer):
            self._refused = True
            conn.abort()
            return
        limit = service.model.maximum_concurrent_connections
        if limit and service.open_connections() >= limit:
            self._refused = True
            service.emit(
                "30051",
                account=self._peer_ref(""),
                address=self.peer.address,
                port=self.peer.port,
                limit=limit,
            )
            conn.abort()
            return
        service.track(self)
        service.emit(
            "30014",
            account=self._peer_ref(""),
            address=self.peer.address,
            port=self.peer.port,
            via=self._arrival.describe_via(),
            proxy_tlvs=self._arrival.tlvs,
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if self._refused:
            return
        self._service.forget(self)
        reason = self._close_reason if exc is None else str(exc) or type(exc).__name__
        if self.account is None and exc is not None:
            self._service.emit(
                "30013",
                account=self._peer_ref(""),
                address=self.peer.address,
                port=self.peer.port,
                reason=reason,
            )
        self._service.emit(
            "30015",
            account=self._account_ref(),
            address=self.peer.address,
            port=self.peer.port,
            duration=round(time.monotonic() - self.opened, 3),
            reason=reason,
        )

    def close(self, reason: str) -> None:
        self._close_reason = reason
        if self._conn is not None:
            self._conn.close()

    def _peer_ref(self, username: str) -> AccountRef:
        return AccountRef(name=username, peer=self.peer)

    def _account_ref(self) -> AccountRef:
        if self.account is None:
            return self._peer_ref("")
        return AccountRef(name=self.account.name, uuid=self.account.uuid, peer=self.peer)

    # -- authentication ----------------------------------------------------------------

    def begin_auth(self, username: str) -> bool:
        message = self._service.model.before_login_message
        if message and self._conn is not None:
            self._conn.send_auth_banner(message + "\n")
        return True

    def password_auth_supported(self) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def kbdint_auth_supported(self) -> bool:
        return False

    async def validate_password(self, username: str, password: str) -> bool:
        credentials = self._credentials("password", username, password=password)
        decision, method = await self._authenticate(credentials)
        if decision.outcome is not Outcome.ACCEPT:
            return False
        self._accepted = (decision, method, credentials.type)
        return True

    async def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        line = key.export_public_key().decode("ascii").strip()
        # asyncssh asks twice per key (query, then signed); one chain run and event per key.
        cached = self._key_decisions.get(username + "\0" + line)
        if cached is None:
            credentials = self._credentials("ssh-key", username, public_key=line)
            cached = await self._authenticate(credentials)
            self._key_decisions[username + "\0" + line] = cached
        decision, method = cached
        if decision.outcome is not Outcome.ACCEPT:
            return False
        self._accepted = (decision, method, "ssh-key")
        return True

    def _credentials(
        self, kind: CredentialType, username: str, password: str = "", public_key: str = ""
    ) -> Credentials:
        return Credentials(
            kind,
            username,
            self.peer,
            password=password,
            public_key=public_key,
            service=self._service.ref,
        )

    async def _authenticate(self, credentials: Credentials) -> tuple[Decision, ComponentRef | None]:
        result = await chain.authenticate(chain.login_scope(self._service), credentials)
        return result.decision, result.method

    async def auth_completed(self) -> None:
        self._ready = asyncio.get_running_loop().create_future()
        try:
            self._ready.set_result(await self._login())
        except BaseException:
            self._ready.set_result(None)
            raise

    async def _login(self) -> AccountFS | None:
        """Announce the login and prepare the home; None (and the connection closes) if the
        home cannot be used."""
        assert self._accepted is not None and self._accepted[0].account is not None
        decision, method, credentials_type = self._accepted
        account = decision.account
        assert account is not None
        self.account = account
        ref = self._account_ref()
        self._service.emit(
            "20137",
            account=ref,
            username=account.name,
            credentials_type=credentials_type,
            method_name=method.name if method else "-",
            method_type=method.type if method else "-",
            groups=", ".join(account.groups),
        )
        scope = chain.login_scope(self._service)
        await chain.completed(scope, account.name, credentials_type, self.peer.address)
        node_name = self._service.configuration.node_name
        try:
            # Building the jail resolves its roots, and preparing may create folders: a
            # filesystem call can block, so all of it runs off the loop.
            fs, created = await asyncio.to_thread(AccountFS.prepared, account, node_name)
        except OSError as error:
            self._service.emit(
                "20067", account=ref, username=account.name, reason=error.strerror or str(error)
            )
            self.close("home folder unusable")
            return None
        if created:
            self._service.emit("20042", account=ref, username=account.name, path=str(account.home))
        self.touch()
        return fs

    # -- sessions ----------------------------------------------------------------------

    def touch(self) -> None:
        """Note activity; the idle timer closes the connection after a quiet period."""
        self._last_activity = time.monotonic()
        if self._idle_timer is None:
            self._arm_idle_timer(self._service.model.idle_timeout)

    def _arm_idle_timer(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        self._idle_timer = loop.call_later(max(delay, 0.05), self._check_idle)

    def _check_idle(self) -> None:
        timeout = self._service.model.idle_timeout
        idle = time.monotonic() - self._last_activity
        if idle >= timeout:
            self._idle_timer = None
            name = self.account.name if self.account else ""
            self._service.emit(
                "30016", account=self._account_ref(), username=name, timeout=f"{timeout:g}"
            )
            self.close(f"idle for {timeout:g} seconds")
            return
        self._arm_idle_timer(timeout - idle)

    async def sftp_session(self, chan: asyncssh.SSHServerChannel[bytes]) -> SftpSession:
        """A session starts once the login's home preparation has finished."""
        fs = await self._ready if self._ready is not None else None
        if fs is None:
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, "not logged in")
        subsystem = "SCP" if chan.get_command() else "SFTP"
        return SftpSession(chan, fs, self._account_ref(), self._service.emit, self.touch, subsystem)
