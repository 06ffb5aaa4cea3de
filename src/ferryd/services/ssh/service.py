"""The ``ssh`` service: an asyncssh listener serving SFTP v3 and SCP to jailed accounts.

Reconfiguration applies new host keys, algorithms, limits and messages to new connections
through asyncssh's ``SSHAcceptor.update`` without touching open sessions; only a new address
or port needs a rebind, which the supervisor does as a restart.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncssh

from ferryd.auth.account import storage_roots
from ferryd.config.configuration import Configuration, Section
from ferryd.config.models import AccountModel, SshServiceModel
from ferryd.config.problems import Problem
from ferryd.fs.sweep import sweep_stale_uploads
from ferryd.lifecycle import Component, Reconfigured, State
from ferryd.services.ssh.connection import SshConnection

_LOGIN_TIMEOUT = 120.0


def _key_paths(model: SshServiceModel, configuration: Configuration) -> list[Path]:
    names = model.ssh_server_keys or configuration.server.ssh_server_keys
    return [configuration.resolve_path(name) for name in names]


class SshService(Component[SshServiceModel]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[SshConnection] = set()
        self._sweep: asyncio.Task[None] | None = None

    @classmethod
    def preflight(cls, section: Section, configuration: Configuration) -> list[Problem]:
        model = section.model
        assert isinstance(model, SshServiceModel)
        option = "ssh_server_keys" if model.ssh_server_keys else None
        origin = section.options.get(option) if option else None
        origin = origin or section.header
        problems = []
        paths = _key_paths(model, configuration)
        if not paths:
            message = "no SSH host key: set ssh_server_keys here or in [server]"
            problems.append(
                Problem(origin.path, origin.line, message, section.title, "ssh_server_keys")
            )
        for path in paths:
            try:
                asyncssh.read_private_key(path)
            except (OSError, asyncssh.KeyImportError, ValueError) as error:
                message = f"cannot load host key {path}: {error}"
                problems.append(
                    Problem(origin.path, origin.line, message, section.title, "ssh_server_keys")
                )
        return problems

    # -- what connections use ----------------------------------------------------------

    def open_connections(self) -> int:
        return len(self._connections)

    def track(self, connection: SshConnection) -> None:
        self._connections.add(connection)

    def forget(self, connection: SshConnection) -> None:
        self._connections.discard(connection)

    # -- lifecycle ---------------------------------------------------------------------

    def _options(self, model: SshServiceModel) -> dict[str, Any]:
        algorithms = model.algorithms
        keys = [asyncssh.read_private_key(path) for path in _key_paths(model, self.configuration)]
        return {
            "server_host_keys": keys,
            "kex_algs": list(algorithms.kex),
            "encryption_algs": list(algorithms.ciphers),
            "mac_algs": list(algorithms.macs),
            "signature_algs": list(algorithms.signatures),
            "compression_algs": ["none"],
            "sftp_factory": self._sftp_factory if model.sftp or model.scp else None,
            "allow_scp": model.scp,
            "login_timeout": min(_LOGIN_TIMEOUT, model.idle_timeout),
            "kbdint_auth": False,
            "allow_pty": False,
            "agent_forwarding": False,
            "x11_forwarding": False,
            "server_version": "ferryd",
        }

    async def _sftp_factory(self, chan: asyncssh.SSHServerChannel[bytes]) -> asyncssh.SFTPServer:
        owner = chan.get_connection().get_owner()
        assert isinstance(owner, SshConnection)
        if chan.get_subsystem() == "sftp" and not self.model.sftp:
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, "SFTP is disabled")
        return await owner.sftp_session(chan)

    async def start(self) -> None:
        self.state = State.STARTING
        self._acceptor = await self._listen(self.model)
        self.state = State.RUNNING
        self._sweep = asyncio.create_task(self._sweep_uploads())

    async def _listen(self, model: SshServiceModel) -> asyncssh.SSHAcceptor:
        acceptor = await asyncssh.listen(
            model.address,
            model.port,
            server_factory=lambda: SshConnection(self),
            reuse_address=True,
            **self._options(model),
        )
        name = model.name or self.context.uuid
        self.emit("30076", name=name, address=model.address, port=acceptor.get_port())
        return acceptor

    @property
    def port(self) -> int:
        """The bound port (differs from the option when it is 0, as in tests)."""
        if self._acceptor is None:
            return self.model.port
        return self._acceptor.get_port()

    async def _sweep_uploads(self) -> None:
        """Remove this node's temporary upload files left by a crash, in the background."""
        configuration = self.configuration
        roots: set[Path] = set()
        for section in configuration.of_kind("accounts"):
            if isinstance(section.model, AccountModel):
                roots.update(storage_roots(configuration, section.model))
        await asyncio.to_thread(sweep_stale_uploads, roots, configuration.node_name)

    async def reconfigure(self, model: SshServiceModel) -> Reconfigured:
        """New options for new connections; a new address or port binds a new listener and
        closes the old one, while connections accepted by the old one carry on."""
        assert self._acceptor is not None
        if (model.address, model.port) != (self.model.address, self.model.port):
            try:
                acceptor = await self._listen(model)
            except OSError as error:
                # The supervisor reports it (20158); the old listener and sessions carry on.
                raise RuntimeError(
                    f"cannot listen on {model.address}:{model.port}: "
                    f"{error.strerror or error}; still listening on "
                    f"{self.model.address}:{self.port}"
                ) from None
            old, self._acceptor = self._acceptor, acceptor
            old.close()
        else:
            self._acceptor.update(**self._options(model))
        self.model = model
        return Reconfigured.APPLIED

    async def stop(self, drain_timeout: float) -> None:
        self.state = State.STOPPING
        if self._sweep is not None:
            self._sweep.cancel()
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.close()
        deadline = asyncio.get_running_loop().time() + drain_timeout
        while self._connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for connection in list(self._connections):
            connection.close("the service is stopping")
        while self._connections and asyncio.get_running_loop().time() < deadline + 5:
            await asyncio.sleep(0.05)
        if acceptor is not None:
            await acceptor.wait_closed()
        self.state = State.STOPPED
