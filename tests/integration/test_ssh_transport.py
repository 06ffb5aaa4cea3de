"""What goes over the wire: no SSH_MSG_IGNORE padding packets with modern ciphers (it doubles
the packets of a transfer), kept for CBC ciphers where it is a countermeasure; SFTP replies
fill SSH packets instead of each taking its own."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import asyncssh
import pytest
from asyncssh.packet import Byte, String, UInt32, UInt64
from sshkit import SshServer, account_section

REQUEST = 32 * 1024  # what WinSCP, FileZilla and ``sftp -B 32768`` ask for
# SFTP version 3 (draft-ietf-secsh-filexfer-02) message types and open flags
FXP_INIT, FXP_VERSION, FXP_OPEN, FXP_CLOSE, FXP_READ, FXP_WRITE = 1, 2, 3, 4, 5, 6
FXP_STATUS, FXP_HANDLE, FXP_DATA = 101, 102, 103
FXF_READ, FXF_WRITE, FXF_CREAT, FXF_TRUNC = 0x01, 0x02, 0x08, 0x10


def sftp_debug(ssh: SshServer, batch: str, *options: str) -> str:
    """Run OpenSSH sftp as alice with packet-level debug output; its debug lines."""
    batch_file = ssh.root / "batch.txt"
    batch_file.write_text(batch)
    result = subprocess.run(
        [
            "sftp",
            "-vvv",
            "-o",
            "LogLevel=DEBUG3",
            *options,
            "-P",
            str(ssh.port),
            *ssh.ssh_options(),
            "-b",
            str(batch_file),
            "alice@127.0.0.1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stderr


def ignore_packets_received(ssh: SshServer, cipher: str) -> int:
    """How many SSH_MSG_IGNORE (type 2) packets the client got for two listings."""
    return sftp_debug(ssh, "ls\nls\n", "-c", cipher).count("receive packet: type 2\n")


@pytest.mark.parametrize(
    ("cipher", "expect_ignores"),
    [
        ("aes128-gcm@openssh.com", False),
        ("chacha20-poly1305@openssh.com", False),
        ("aes128-ctr", False),
        ("aes128-cbc", True),
    ],
)
def test_ignore_packets_only_with_cbc_ciphers(
    ssh: SshServer, cipher: str, expect_ignores: bool
) -> None:
    ssh.start(accounts=account_section("alice"), service="ssh_cipher_list = all")
    received = ignore_packets_received(ssh, cipher)
    assert (received > 0) == expect_ignores, f"{received} SSH_MSG_IGNORE packets with {cipher}"


@contextmanager
def channel_data_packets() -> Iterator[list[int]]:
    """The size of every SSH_MSG_CHANNEL_DATA packet asyncssh's client receives, from its
    level-2 debug log ("Received N data bytes")."""
    sizes: list[int] = []

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "] Received %d data byte" in str(record.msg):
                sizes.append(int(record.args[0]))  # type: ignore[index]

    logger = logging.getLogger("asyncssh")
    handler, level = Count(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    asyncssh.set_debug_level(2)
    try:
        yield sizes
    finally:
        asyncssh.set_debug_level(1)
        logger.setLevel(level)
        logger.removeHandler(handler)


class RawSftp:
    """SFTP spoken by hand on a session channel, so a test decides which requests reach the
    server together: everything given to one :meth:`send` is one SSH packet."""

    def __init__(self, writer: asyncssh.SSHWriter[bytes], reader: asyncssh.SSHReader[bytes]):
        self.writer, self.reader = writer, reader
        self.next_id = 0

    @classmethod
    async def open(cls, conn: asyncssh.SSHClientConnection) -> RawSftp:
        writer, reader, _ = await conn.open_session(subsystem="sftp", encoding=None)
        sftp = cls(writer, reader)
        sftp.send([sftp.message(FXP_INIT, UInt32(3))])
        await sftp.reply(FXP_VERSION)
        return sftp

    def message(self, kind: int, *fields: bytes) -> bytes:
        body = Byte(kind) + b"".join(fields)
        return UInt32(len(body)) + body

    def request(self, kind: int, *fields: bytes) -> bytes:
        self.next_id += 1
        return self.message(kind, UInt32(self.next_id), *fields)

    def send(self, messages: list[bytes]) -> None:
        self.writer.write(b"".join(messages))

    async def reply(self, kind: int) -> bytes:
        size = int.from_bytes(await self.reader.readexactly(4), "big")
        body = await self.reader.readexactly(size)
        assert body[0] == kind, body[:64]
        return body[1:]

    async def open_file(self, path: str, flags: int) -> bytes:
        self.send([self.request(FXP_OPEN, String(path), UInt32(flags), UInt32(0))])
        body = await self.reply(FXP_HANDLE)
        return body[8 : 8 + int.from_bytes(body[4:8], "big")]


async def test_read_replies_fill_every_packet(ssh: SshServer) -> None:
    """A 32 KiB read reply is 32,781 bytes: sent reply by reply it takes a full packet and a
    13-byte one. Streamed, the client's 32 KiB packet limit is the only boundary."""
    ssh.start(accounts=account_section("alice"))
    count = 64
    content = os.urandom(count * REQUEST)
    ssh.home("alice").mkdir(parents=True, exist_ok=True)
    (ssh.home("alice") / "big.bin").write_bytes(content)
    async with await ssh.connect("alice") as conn:
        sftp = await RawSftp.open(conn)
        handle = await sftp.open_file("big.bin", FXF_READ)
        with channel_data_packets() as sizes:
            sftp.send(
                [
                    sftp.request(FXP_READ, String(handle), UInt64(n * REQUEST), UInt32(REQUEST))
                    for n in range(count)
                ]
            )
            replies = [await sftp.reply(FXP_DATA) for _ in range(count)]
    assert b"".join(reply[8:] for reply in replies) == content
    # 64 x 32,781 bytes: 64 full packets and one of 832 bytes (one more cut where the
    # client's 2 MiB window ends); a packet per reply would have made 128.
    assert len(sizes) <= count + 2, sizes
    assert sizes.count(REQUEST) >= count - 1, sizes


async def test_status_replies_share_packets(ssh: SshServer) -> None:
    """WRITE requests answered in one pass get their status replies in one packet, so an
    upload with small requests does not cost a packet per request."""
    ssh.start(accounts=account_section("alice"))
    count, size = 16, 1024
    content = os.urandom(count * size)
    async with await ssh.connect("alice") as conn:
        sftp = await RawSftp.open(conn)
        handle = await sftp.open_file("up.bin", FXF_WRITE | FXF_CREAT | FXF_TRUNC)
        with channel_data_packets() as sizes:
            sftp.send(
                [
                    sftp.request(
                        FXP_WRITE,
                        String(handle),
                        UInt64(n * size),
                        String(content[n * size : (n + 1) * size]),
                    )
                    for n in range(count)
                ]
            )
            statuses = [await sftp.reply(FXP_STATUS) for _ in range(count)]
        sftp.send([sftp.request(FXP_CLOSE, String(handle))])
        await sftp.reply(FXP_STATUS)
    assert all(status[4:8] == UInt32(0) for status in statuses), statuses
    assert (ssh.home("alice") / "up.bin").read_bytes() == content
    assert len(sizes) == 1, f"{len(sizes)} packets for {count} replies: {sizes}"
