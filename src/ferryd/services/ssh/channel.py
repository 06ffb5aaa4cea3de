"""Full SSH packets from consecutive channel writes, without copying each write first.

asyncssh packs every ``write`` on a channel into its own SSH packets: a 32 KiB SFTP read
reply (32,781 bytes) leaves as a full 32,768-byte packet plus a 13-byte one, so a download
with 32 KiB requests frames, encrypts and sends twice the packets it needs. It also copies
each write into a ``bytearray`` and each packet out of it again. OpenSSH streams its channel
buffer instead and fills every packet.

This channel does the same: data waits in the send buffer as the caller's ``bytes``
(sliced through ``memoryview``, never copied), each packet is cut across as many writes as
fit, and a packet that is not full yet waits until the end of the event-loop pass, when the
connection sends everything written in that pass (:mod:`.batching`). Nothing is delayed
past the moment the loop would have sent it anyway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AnyStr, cast

import asyncssh
from asyncssh.constants import (
    MSG_CHANNEL_DATA,
    MSG_CHANNEL_EOF,
    MSG_CHANNEL_EXTENDED_DATA,
    MSG_CHANNEL_WINDOW_ADJUST,
)
from asyncssh.packet import String, UInt32

if TYPE_CHECKING:
    from ferryd.services.ssh.batching import BatchedWrites


class StreamingChannel(asyncssh.SSHServerChannel[AnyStr]):
    """asyncssh's server channel with a send buffer that fills packets across writes.

    Every write goes through the one buffer, in order. Plain data on an open channel is
    kept as given; other writes (stderr, text, after EOF) take asyncssh's ``write`` first.
    A packet never joins data of two types, and a partial packet waits only while the
    channel is open and nothing of another type is queued behind it.
    """

    _batch: BatchedWrites | None = None
    _deferred = False  # waiting for the end of the loop pass with a partial packet

    def attach(self, batch: BatchedWrites) -> None:
        """Send partial packets when ``batch`` sends the loop pass's writes."""
        self._batch = batch

    def write(self, data: Any, datatype: asyncssh.DataType = None) -> None:
        if datatype is not None or self._encoding or self._send_state != "open" or not data:
            super().write(data, datatype)
            return
        self._send_buf.append((data, None))
        self._send_buf_len += len(data)
        self._flush_send_buf()

    def _flush_send_buf(self) -> None:
        self._send_full(final=self._batch is None or self._send_state != "open")
        self._pause_resume_writing()
        if not self._send_buf:
            if self._send_state == "eof_pending":
                self.send_packet(MSG_CHANNEL_EOF)
                self._send_state = "eof"
            elif self._send_state == "close_pending":
                self._close_send()

    def send_packet(self, pkttype: int, *args: bytes) -> None:
        # A request (exit-status), EOF or close never overtakes data written before it.
        if self._deferred and pkttype != MSG_CHANNEL_WINDOW_ADJUST:
            self.flush_partial()
        super().send_packet(pkttype, *args)

    def flush_partial(self) -> None:
        """The end of the loop pass: send what waits, full packets or not."""
        self._deferred = False
        if self._conn is not None and self._send_buf:
            self._send_full(final=True)
            self._pause_resume_writing()

    def _send_full(self, final: bool) -> None:
        """Send packets while the window allows; a partial last packet only if ``final``."""
        # bytes and memoryviews, where asyncssh's own code keeps bytearrays
        buf = cast("list[tuple[Any, int | None]]", self._send_buf)
        while buf and self._send_window:
            limit = min(self._send_window, self._send_pktsize)
            if buf[0][1] is not None:
                self._send_extended(limit)
                continue
            pieces: list[Any] = []
            size = 0
            taken = 0
            for data, kind in buf:
                if kind is not None or size == limit:
                    break
                room = limit - size
                if len(data) > room:
                    view = memoryview(data)
                    pieces.append(view[:room])
                    buf[taken] = (view[room:], None)
                    size = limit
                    break
                pieces.append(data)
                size += len(data)
                taken += 1
            more_of_other_kind = taken < len(buf) and buf[taken][1] is not None
            if size < limit and not final and not more_of_other_kind:
                # Partial and nothing else queued: more may come in this pass.
                self._defer()
                return
            del buf[:taken]
            self._send_buf_len -= size
            self._send_window -= size
            assert self._conn is not None and self._send_chan is not None
            self._conn.send_packet(
                MSG_CHANNEL_DATA,
                b"".join([UInt32(self._send_chan), UInt32(size), *pieces]),
                handler=self,
            )

    def _send_extended(self, limit: int) -> None:
        """One packet of extended data (stderr) from the head of the buffer."""
        buf = cast("list[tuple[Any, int]]", self._send_buf)
        data, datatype = buf[0]
        if len(data) > limit:
            view = memoryview(data)
            buf[0] = (view[limit:], datatype)
            data = view[:limit]
        else:
            del buf[0]
        self._send_buf_len -= len(data)
        self._send_window -= len(data)
        # asyncssh's own send_packet: ours would flush the partial packet first, and what
        # it flushes now is what follows this piece in the buffer (the rest of the stderr
        # write, or data queued behind it), which would then overtake it.
        super().send_packet(MSG_CHANNEL_EXTENDED_DATA, UInt32(datatype), String(data))

    def _defer(self) -> None:
        if not self._deferred and self._batch is not None:
            self._deferred = True
            self._batch.before_flush(self)
