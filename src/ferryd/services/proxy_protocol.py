"""PROXY protocol v1/v2 on an accepted socket, before the service's own protocol starts.

A load balancer that speaks the PROXY protocol writes one header ahead of the client's bytes.
The header is read byte-exact from the socket (never past its end), so whatever follows, such
as the SSH client's version line, stays in the kernel buffer for the protocol library that is
handed the socket next. Parsing is the ``proxy-protocol`` package's; what to trust is ours.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from proxyprotocol import ProxyProtocolSyntaxError
from proxyprotocol.detect import ProxyProtocolDetect
from proxyprotocol.reader import ProxyProtocolReader
from proxyprotocol.result import ProxyResult, ProxyResultLocal
from proxyprotocol.tlv import ProxyProtocolTLV

from ferryd.config.models.access import Network, in_network
from ferryd.events.event import Peer

Mode = Literal["off", "optional", "required"]

_V1_LINE_LIMIT = 107  # the specification's longest v1 header, CRLF included
_SIGNATURES = (b"PROXY ", b"\r\n\r\n\x00\r\nQUIT\n")  # v1, v2
_READER = ProxyProtocolReader(ProxyProtocolDetect())


class ProxyRefused(Exception):
    """The connection is refused because of its PROXY header (or the lack of one);
    ``peer`` is the socket's peer, the only address known."""

    def __init__(self, reason: str, peer: Peer) -> None:
        super().__init__(reason)
        self.peer = peer


@dataclass(frozen=True, slots=True)
class Arrival:
    """Who is really on the other end of an accepted connection.

    ``via`` is the load balancer (the socket's peer) when a header named the client;
    ``probe`` is a v2 LOCAL header: the balancer's own health check, not a client."""

    peer: Peer
    via: Peer | None = None
    version: int = 0
    tlvs: dict[str, str] = field(default_factory=dict)
    probe: bool = False

    def describe_via(self) -> str:
        """`` via ADDRESS:PORT (PROXY vN)``, or nothing for a direct connection."""
        if self.via is None:
            return ""
        return f" via {self.via.address}:{self.via.port} (PROXY v{self.version})"


def peer_from(address: object) -> Peer:
    """A socket address as events show it: IPv4-mapped IPv6 addresses as plain IPv4."""
    if not isinstance(address, tuple) or len(address) < 2:
        return Peer(str(address), 0)
    host, port = str(address[0]), int(address[1])
    if host.startswith("::ffff:"):
        host = host[len("::ffff:") :]
    family = "IPv6" if ":" in host else "IPv4"
    return Peer(address=host, port=port, family=family)


def is_trusted(address: str, networks: Sequence[Network]) -> bool:
    return any(in_network(address, network) for network in networks)


class _ExactReader:
    """The reader interface the parser wants, reading no byte past what it asks for."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._loop = asyncio.get_running_loop()

    async def readexactly(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = await self._loop.sock_recv(self._sock, count - len(data))
            if not chunk:
                raise asyncio.IncompleteReadError(data, count)
            data += chunk
        return data

    async def readline(self) -> bytes:
        # A v1 header ends with CRLF; one byte at a time so nothing after it is consumed.
        line = b""
        while not line.endswith(b"\n"):
            line += await self.readexactly(1)
            if len(line) > _V1_LINE_LIMIT:
                raise ProxyProtocolSyntaxError("v1 header longer than 107 bytes")
        return line


async def _starts_with_header(sock: socket.socket, via: Peer) -> bool:
    """Whether the first byte (peeked, not consumed) can begin a header: both signatures
    start with ``P`` or CR, and no SSH client starts that way (``SSH-``)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            first = sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            await _readable(loop, sock)
            continue
        if not first:
            raise ProxyRefused("the connection closed before sending anything", via)
        return first in (b"P", b"\r")


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())


def _tlvs(tlv: ProxyProtocolTLV) -> dict[str, str]:
    """TLVs by name where the specification names them; others as ``0xNN`` in hex."""
    named: dict[str, str] = {}
    if tlv.alpn:
        named["alpn"] = tlv.alpn.decode("ascii", "replace")
    if tlv.authority:
        named["authority"] = tlv.authority
    if tlv.unique_id:
        named["unique_id"] = tlv.unique_id.hex()
    if tlv.netns:
        named["netns"] = tlv.netns
    ssl = tlv.ssl
    if ssl:
        named["ssl_version"] = ssl.version or ""
        named["ssl_cn"] = ssl.cn or ""
    known = {0x01, 0x02, 0x04, 0x05, 0x20, 0x30}
    for kind in tlv:
        if kind not in known:
            named[f"0x{kind:02x}"] = tlv[kind].hex()
    return named


def _arrival(result: ProxyResult, via: Peer, version: int) -> Arrival:
    if isinstance(result, ProxyResultLocal):
        return Arrival(peer=via, version=version, probe=True)
    if not result.proxied or not isinstance(result.peername, tuple):
        # v1 UNKNOWN or a UNIX-socket source: nothing better than the balancer's address.
        return Arrival(peer=via, via=via, version=version, tlvs=_tlvs(result.tlv))
    return Arrival(
        peer=peer_from(result.peername), via=via, version=version, tlvs=_tlvs(result.tlv)
    )


async def arrive(
    sock: socket.socket, mode: Mode, trusted: Sequence[Network], timeout: float
) -> Arrival:
    """Read the PROXY header the service's mode expects; raise ProxyRefused with the reason.

    ``optional`` accepts a connection without a header from anywhere, but a header only
    from a trusted source (anyone else could claim any address and dodge bans and filters).
    """
    via = peer_from(sock.getpeername())  # OSError if the client is already gone
    if mode == "off":
        return Arrival(peer=via)
    trusted_source = is_trusted(via.address, trusted)
    if mode == "required" and not trusted_source:
        raise ProxyRefused(
            f"{via.address} is not in proxy_protocol_trusted_sources (a header is required)",
            via,
        )
    deadline = asyncio.get_running_loop().time() + timeout  # one for the whole header
    if mode == "optional":
        try:
            async with asyncio.timeout_at(deadline):
                if not await _starts_with_header(sock, via):
                    return Arrival(peer=via)
        except TimeoutError:
            # Silent so far: a client waiting for the server to speak first, not a header.
            return Arrival(peer=via)
    try:
        async with asyncio.timeout_at(deadline):
            if not trusted_source:
                raise ProxyRefused(
                    f"PROXY header from {via.address}, which is not in "
                    "proxy_protocol_trusted_sources",
                    via,
                )
            first = await _ExactReader(sock).readexactly(8)
            if not any(first.startswith(s[:8]) for s in _SIGNATURES):
                expected = "proxy_protocol = required" if mode == "required" else "bad signature"
                raise ProxyRefused(f"no PROXY protocol header ({expected})", via)
            version = 1 if first.startswith(b"PROXY ") else 2
            result = await _READER.read(_Prefixed(first, _ExactReader(sock)))
            return _arrival(result, via, version)
    except TimeoutError:
        reason = f"no complete PROXY header within {timeout:g} s"
    except asyncio.IncompleteReadError:
        reason = "the connection closed in the middle of the PROXY header"
    except OSError as error:
        reason = f"cannot read the PROXY header: {error.strerror or error}"
    except (ProxyProtocolSyntaxError, ValueError, LookupError, struct.error) as error:
        # The parser's own errors, and what it raises on lengths that do not add up.
        reason = f"malformed PROXY header: {error}"
    raise ProxyRefused(reason, via)


class _Prefixed:
    """Replays the bytes already read to tell a header apart, then reads on exactly."""

    def __init__(self, prefix: bytes, reader: _ExactReader) -> None:
        self._prefix = prefix
        self._reader = reader

    def _take(self, count: int) -> bytes:
        taken, self._prefix = self._prefix[:count], self._prefix[count:]
        return taken

    async def readexactly(self, count: int) -> bytes:
        taken = self._take(count)
        if len(taken) < count:
            taken += await self._reader.readexactly(count - len(taken))
        return taken

    async def readline(self) -> bytes:
        line = b""
        while self._prefix and not line.endswith(b"\n"):
            line += self._take(1)
        if not line.endswith(b"\n"):
            rest = await self._reader.readline()
            line += rest
            if len(line) > _V1_LINE_LIMIT:
                raise ProxyProtocolSyntaxError("v1 header longer than 107 bytes")
        return line
