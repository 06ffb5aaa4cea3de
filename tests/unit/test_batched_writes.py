"""SSH packets made in one loop pass leave in one write, in order, and none is lost when
the connection is closed or aborted right after them (a disconnect message, typically)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from ferryd.services.ssh.batching import BatchedWrites


class _Sink(asyncio.Protocol):
    pass


async def _pair() -> tuple[BatchedWrites, asyncio.Transport, socket.socket]:
    ours, theirs = socket.socketpair()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(_Sink, sock=ours)
    return BatchedWrites(transport, loop), transport, theirs


async def _received(peer: socket.socket) -> bytes:
    loop = asyncio.get_running_loop()
    peer.setblocking(False)
    data = b""
    while chunk := await asyncio.wait_for(loop.sock_recv(peer, 65536), 5):
        data += chunk
    return data


@pytest.mark.parametrize("ending", ["close", "abort"])
async def test_packets_written_just_before_the_end_still_arrive_in_order(ending: str) -> None:
    batched, transport, peer = await _pair()
    writes: list[bytes] = []
    real_write = transport.write

    def counting(data: bytes) -> None:  # what reaches the real transport
        writes.append(data)
        real_write(data)

    transport.write = counting  # type: ignore[method-assign]
    for part in (b"one ", b"two ", b"three"):
        batched.write(part)
    assert writes == [], "nothing is written before the loop pass ends"
    getattr(batched, ending)()
    assert await _received(peer) == b"one two three"
    assert writes == [b"one two three"], "one write for the pass"
    peer.close()


async def test_writes_of_one_pass_are_joined_and_sent_when_the_pass_ends() -> None:
    batched, transport, peer = await _pair()
    batched.write(b"a")
    batched.write(b"b")
    await asyncio.sleep(0)  # the loop runs the flush
    peer.setblocking(False)
    assert await asyncio.wait_for(asyncio.get_running_loop().sock_recv(peer, 10), 5) == b"ab"
    assert transport.get_write_buffer_size() == 0  # all of it went out, nothing is held back
    batched.close()
    peer.close()
