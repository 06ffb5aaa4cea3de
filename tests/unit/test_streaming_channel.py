"""The streaming channel's order of data and stderr when a partial packet is waiting.

The server never writes a large stderr right after a small stdout write within one loop pass
(asyncssh's SCP writes one short error line), so no client session can produce this case; the
channel runs here on asyncssh's own class with a stand-in connection that records packets.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncssh
from asyncssh.constants import MSG_CHANNEL_DATA, MSG_CHANNEL_EXTENDED_DATA

from ferryd.services.ssh.batching import BatchedWrites
from ferryd.services.ssh.channel import StreamingChannel

PACKET = 32768


class RecordingConnection:
    """What the channel asks of its connection; packets are kept in the order sent."""

    logger = asyncssh.logging.logger

    def __init__(self) -> None:
        self.sent: list[tuple[int, bytes]] = []

    def add_channel(self, channel: Any) -> int:
        return 0

    def get_key_option(self, name: str, default: Any = None) -> Any:
        return default

    def get_certificate_option(self, name: str, default: Any = None) -> Any:
        return default

    def send_packet(self, pkttype: int, *args: bytes, handler: Any = None) -> None:
        self.sent.append((pkttype, b"".join(args)))


class NullTransport:
    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False


async def test_stderr_longer_than_a_packet_after_a_waiting_partial_keeps_its_order() -> None:
    loop = asyncio.get_running_loop()
    connection = RecordingConnection()
    channel: StreamingChannel[bytes] = StreamingChannel(
        connection, loop, False, False, False, 0, 1024, None, "strict", 2**20, PACKET
    )
    channel._send_chan, channel._send_window = 7, 2**20
    channel._send_pktsize, channel._send_state = PACKET, "open"
    channel.attach(BatchedWrites(NullTransport(), loop))  # type: ignore[arg-type]

    channel.write(b"out")  # a partial packet: it waits for the end of the loop pass
    channel.write_stderr(b"1" * PACKET + b"2" * 100)
    await asyncio.sleep(0)

    kinds = [kind for kind, _ in connection.sent]
    assert kinds == [MSG_CHANNEL_DATA, MSG_CHANNEL_EXTENDED_DATA, MSG_CHANNEL_EXTENDED_DATA]
    stdout = connection.sent[0][1][8:]  # after recipient channel and length
    stderr = b"".join(payload[12:] for _, payload in connection.sent[1:])  # and its type
    assert stdout == b"out"
    assert stderr == b"1" * PACKET + b"2" * 100
