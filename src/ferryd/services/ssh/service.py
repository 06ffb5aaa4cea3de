"""The ``ssh`` service: SFTP v3 and SCP over asyncssh to jailed accounts.

The service runs its own accept loop (``Listener``) and hands each socket to asyncssh once
any PROXY protocol header has been read from it. Reconfiguration gives new host keys,
algorithms, limits and messages to new connections without touching open sessions; a new
address or port binds a new listener while connections accepted by the old one carry on.
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import asyncssh

from ferryd.auth.account import storage_roots
from ferryd.config.configuration import Configuration, Section
from ferryd.config.models import AccountModel, SshServiceModel
from ferryd.config.problems import Problem
from ferryd.events.event import AccountRef
from ferryd.fs.sweep import sweep_stale_uploads
from ferryd.lifecycle import Component, Readiness, Reconfigured, State
from ferryd.services.listener import Listener
from ferryd.services.proxy_protocol import Arrival, ProxyRefused, arrive
from ferryd.services.ssh.batching import BatchingServerConnection
from ferryd.services.ssh.connection import SshConnection

_LOGIN_TIMEOUT = 120.0
_DRAIN_LOGIN_GRACE = 10.0  # seconds a drain waits for a connection that has not logged in


def _key_paths(model: SshServiceModel, configuration: Configuration) -> list[Path]:
    names = model.ssh_server_keys or configuration.server.ssh_server_keys
    return [configuration.resolve_path(name) for name in names]


def _load_host_key(path: Path) -> asyncssh.SSHKey:
    """Raises ValueError naming the file: the message reaches events and ``ferryd check``."""
    try:
        return asyncssh.read_private_key(path)
    except (OSError, asyncssh.KeyImportError, ValueError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ValueError(f"cannot load host key {path}: {reason}") from None


class SshService(Component[SshServiceModel]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listener: Listener | None = None
        self._ssh_options: asyncssh.SSHServerConnectionOptions | None = None
        self._connections: set[SshConnection] = set()
        self._sweep: asyncio.Task[None] | None = None
        self._retired: list[Listener] = []  # closed, with connections perhaps still arriving

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
                _load_host_key(path)
            except ValueError as error:
                problems.append(
                    Problem(origin.path, origin.line, str(error), section.title, "ssh_server_keys")
                )
        return problems

    @classmethod
    def referenced_files(cls, model: SshServiceModel, configuration: Configuration) -> list[Path]:
        return _key_paths(model, configuration)

    # -- what connections use ----------------------------------------------------------

    def open_connections(self) -> int:
        return len(self._connections)

    def track(self, connection: SshConnection) -> None:
        self._connections.add(connection)

    def forget(self, connection: SshConnection) -> None:
        self._connections.discard(connection)

    def busy(self) -> int:
        """Connections a drain waits for: logged-in ones, and ones still within a normal
        login's time; a connection idle before login must not hold a stopping node."""
        horizon = time.monotonic() - _DRAIN_LOGIN_GRACE
        return sum(1 for c in self._connections if c.account is not None or c.opened > horizon)

    async def readiness(self) -> Readiness:
        if self._listener is None:
            return Readiness(False, "not accepting connections")
        return Readiness(True, f"listening on {self.model.address}:{self._listener.port}")

    # -- lifecycle ---------------------------------------------------------------------

    def _options(self, model: SshServiceModel) -> dict[str, Any]:
        algorithms = model.algorithms
        keys = [_load_host_key(path) for path in _key_paths(model, self.configuration)]
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
            # No line editor: ferryd runs no shells, and it would wrap every channel write.
            "line_editor": False,
            "agent_forwarding": False,
            "x11_forwarding": False,
            "server_version": "ferryd",
            # No GSS: without this asyncssh looks the host name up (DNS) for each connection.
            "gss_host": None,
        }

    async def _sftp_factory(self, chan: asyncssh.SSHServerChannel[bytes]) -> asyncssh.SFTPServer:
        owner = chan.get_connection().get_owner()
        assert isinstance(owner, SshConnection)
        if chan.get_subsystem() == "sftp" and not self.model.sftp:
            raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, "SFTP is disabled")
        return await owner.sftp_session(chan)

    async def start(self) -> None:
        self.state = State.STARTING
        self._ssh_options = await self._prepare(self.model)
        self._listener = await self._listen(self.model)
        self.state = State.RUNNING
        self._sweep = asyncio.create_task(self._sweep_uploads())

    async def _prepare(self, model: SshServiceModel) -> asyncssh.SSHServerConnectionOptions:
        """Options built once (keys read once) and shared by every new connection."""
        # Reading the key files may block (a network filesystem): off the loop, like the rest.
        return await asyncio.to_thread(
            lambda: asyncssh.SSHServerConnectionOptions(**self._options(model))
        )

    async def _listen(self, model: SshServiceModel) -> Listener:
        name = model.name or self.context.uuid

        def trouble(port: int, reason: str | None, seconds: float) -> None:
            if reason is not None:
                self.emit("20268", name=name, address=model.address, port=port, reason=reason)
            else:
                duration = f"{seconds:.1f}"
                self.emit("20269", name=name, address=model.address, port=port, duration=duration)

        listener = await Listener.open(model.address, model.port, self._accepted, trouble)
        self.emit("30076", name=name, address=model.address, port=listener.port)
        return listener

    async def _accepted(self, sock: socket.socket) -> None:
        """Read what the load balancer says (if anything), then hand the socket to asyncssh."""
        model = self.model
        try:
            arrival = await arrive(
                sock,
                model.proxy_protocol,
                model.proxy_protocol_trusted_sources,
                model.proxy_protocol_timeout,
            )
        except ProxyRefused as error:
            peer = error.peer
            self.emit(
                "30077",
                account=AccountRef(name="", peer=peer),
                address=peer.address,
                port=peer.port,
                reason=str(error),
            )
            sock.close()
            return
        if arrival.probe:
            self.emit(
                "30078",
                account=AccountRef(name="", peer=arrival.peer),
                address=arrival.peer.address,
                port=arrival.peer.port,
            )
            sock.close()
            return
        try:
            await self._serve(sock, arrival)
        except Exception as error:
            # Not a client's doing: say so, instead of a connection reset nobody can explain.
            sock.close()
            self.emit(
                "30013",
                account=AccountRef(name="", peer=arrival.peer),
                address=arrival.peer.address,
                port=arrival.peer.port,
                reason=f"internal error: {error!r}",
            )

    async def _serve(self, sock: socket.socket, arrival: Arrival) -> None:
        """Start asyncssh's server protocol on the socket, as ``asyncssh.listen`` does for
        the sockets it accepts itself (``run_server`` would wait for the login and abort a
        refused client before its disconnect message is sent)."""
        assert self._ssh_options is not None
        options = asyncssh.SSHServerConnectionOptions(
            self._ssh_options, server_factory=lambda: SshConnection(self, arrival)
        )
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: BatchingServerConnection(loop, options), sock=sock)

    @property
    def port(self) -> int:
        """The bound port (differs from the option when it is 0, as in tests)."""
        if self._listener is None:
            return self.model.port
        return self._listener.port

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
        options = await self._prepare(model)
        moved = (model.address, model.port) != (self.model.address, self.model.port)
        if moved and self._listener is not None:  # none once draining: nothing to move
            try:
                listener = await self._listen(model)
            except OSError as error:
                # The supervisor reports it (20158); the old listener and sessions carry on.
                raise RuntimeError(
                    f"{error.strerror}; still listening on {self.model.address}:{self.port}"
                ) from None
            old, self._listener = self._listener, listener
            old.close()
            self._retire(old)
        self._ssh_options = options
        self.model = model
        return Reconfigured.APPLIED

    def _retire(self, listener: Listener) -> None:
        """Keep a closed listener while connections it accepted are still being handed over."""
        self._retired = [r for r in self._retired if r.handing_over()] + [listener]

    async def stop_accepting(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._retire(self._listener)
            self._listener = None

    async def stop(self, drain_timeout: float) -> None:
        self.state = State.STOPPING
        if self._sweep is not None:
            self._sweep.cancel()
        await self.stop_accepting()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_timeout
        while self._connections and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for connection in list(self._connections):
            connection.close("the service is stopping")
        for listener in self._retired:
            await listener.cancel_pending()
        self._retired.clear()
        while self._connections and loop.time() < deadline + 5:
            await asyncio.sleep(0.05)
        self.state = State.STOPPED
