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

_BACKLOG = 511
# Out of descriptors or memory: accepting again at once would spin; wait a moment instead.
_RESOURCE_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class Listener:
    """Accepts connections and runs ``handler`` on each in its own task.

    Closing stops accepting only: connections already handed over carry on, and
    ``cancel_pending`` ends the ones still being handled (when their service stops)."""

    def __init__(self, socks: list[socket.socket], handler: Handler) -> None:
        self._socks = socks
        self._handler = handler
        self._pending: set[asyncio.Task[None]] = set()
        self._loops = [asyncio.create_task(self._accept_loop(sock)) for sock in socks]

    @classmethod
    async def open(cls, address: str, port: int, handler: Handler) -> Listener:
        """Listen on every address ``address`` resolves to (a host name may give an IPv4
        and an IPv6 one), all on the same port (the first one's when ``port`` is 0)."""
        try:
            return cls(await _bind(address, port), handler)
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
                    await asyncio.sleep(0.1)
                    continue
                if sock.fileno() < 0:
                    return
                continue
            connection.setblocking(False)
            task = asyncio.create_task(self._handle(connection))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

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
