"""A listening TCP socket with its own accept loop.

Services accept connections themselves instead of letting the protocol library do it, so that
something can happen between ``accept`` and the first protocol byte: reading a PROXY protocol
header, and dropping a banned address before it learns what answers on the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Awaitable, Callable

Handler = Callable[[socket.socket], Awaitable[None]]
# Told, with the listening port, when accepting stops for lack of resources (the reason)
# and when it works again (None, and how many seconds it did not).
Trouble = Callable[[int, str | None, float], None]

_BACKLOG = 511
# Out of descriptors or memory: accepting again at once would spin; wait a moment instead.
_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_RECOVERED_AFTER = 1.0  # seconds without such a failure that end an episode


class Listener:
    """Accepts connections and runs ``handler`` on each in its own task.

    Closing stops accepting only: connections already handed over carry on, and
    ``cancel_pending`` ends the ones still being handled (when their service stops)."""

    def __init__(
        self, socks: list[socket.socket], handler: Handler, trouble: Trouble | None = None
    ) -> None:
        self._socks = socks
        self._handler = handler
        self._trouble = trouble
        self._pending: set[asyncio.Task[None]] = set()
        # An episode of accepts failing for lack of resources, on any of the sockets (an
        # IPv4 and an IPv6 one share the process's descriptors): when it started, and the
        # timer that ends it once a second passes without another failure.
        self._stalled: tuple[float, asyncio.TimerHandle] | None = None
        self._loops = [asyncio.create_task(self._accept_loop(sock)) for sock in socks]

    @classmethod
    async def open(
        cls, address: str, port: int, handler: Handler, trouble: Trouble | None = None
    ) -> Listener:
        """Listen on every address ``address`` resolves to (a host name may give an IPv4
        and an IPv6 one), all on the same port (the first one's when ``port`` is 0)."""
        try:
            return cls(await _bind(address, port), handler, trouble)
        except OSError as error:
            # The raw error says "Address already in use" without saying which address.
            raise OSError(
                error.errno, f"cannot listen on {address or '*'}:{port}: {error.strerror or error}"
            ) from None

    @property
    def port(self) -> int:
        return int(self._socks[0].getsockname()[1])

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                connection, _ = await loop.sock_accept(sock)
            except OSError as error:
                if error.errno in _RESOURCE_ERRORS:
                    self._stall(error)
                    await asyncio.sleep(0.1)
                    continue
                if sock.fileno() < 0:
                    return
                continue
            connection.setblocking(False)
            task = asyncio.create_task(self._handle(connection))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    def _stall(self, error: OSError) -> None:
        """Told once per episode, which ends after a second without a failure: the loop
        retries every 0.1 s, and under pressure each freed descriptor lets one connection
        in before the next failure; neither may flood the log."""
        loop = asyncio.get_running_loop()
        if self._stalled is not None:
            since, timer = self._stalled
            timer.cancel()
        else:
            since = loop.time()
            if self._trouble is not None:
                self._trouble(self.port, error.strerror or str(error), 0.0)
        self._stalled = (since, loop.call_later(_RECOVERED_AFTER, self._recovered))

    def _recovered(self) -> None:
        assert self._stalled is not None
        since, _ = self._stalled
        self._stalled = None
        if self._trouble is not None:
            self._trouble(self.port, None, asyncio.get_running_loop().time() - since)

    async def _handle(self, connection: socket.socket) -> None:
        try:
            await self._handler(connection)
        except asyncio.CancelledError:
            connection.close()
            raise
        except Exception:
            # The handler reports its own failures as events; the socket must not leak.
            connection.close()

    def handing_over(self) -> bool:
        """Whether connections accepted here are still being handled."""
        return bool(self._pending)

    def close(self) -> None:
        """Stop accepting; the port is free again once this returns."""
        if self._stalled is not None:
            self._stalled[1].cancel()
            self._stalled = None
        for task in self._loops:
            task.cancel()
        for sock in self._socks:
            sock.close()

    async def cancel_pending(self) -> None:
        for task in list(self._pending):
            task.cancel()
        for task in list(self._pending):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _bind(address: str, port: int) -> list[socket.socket]:
    """Listening sockets for every address ``address`` resolves to, on one port."""
    loop = asyncio.get_running_loop()
    found = await loop.getaddrinfo(
        address or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    unique = list(dict.fromkeys((f[0], f[1], f[2], f[4]) for f in found))
    if not unique:
        raise OSError(errno.EADDRNOTAVAIL, f"no address for {address!r}")
    socks: list[socket.socket] = []
    try:
        for family, kind, proto, where in unique:
            if socks and port == 0:
                where = (where[0], socks[0].getsockname()[1], *where[2:])
            sock = socket.socket(family, kind, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and len(unique) > 1:
                # Its IPv4 twin is bound separately; `::` alone stays dual-stack.
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(where)
            sock.listen(_BACKLOG)
            sock.setblocking(False)
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks
