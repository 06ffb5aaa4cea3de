"""SFTP clients for the high-availability tests, as a partner would run them.

Clients connect from 127.0.0.2 while HAProxy reaches the nodes from 127.0.0.1, so a node's
log tells the real client apart from the balancer. Every connection's local port is kept:
the node that logged ``New SSH connection from 127.0.0.2:PORT`` is the one that served it.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncssh
from proxyprotocol.result import ProxyResultIPv4, ProxyResultLocal
from proxyprotocol.v2 import ProxyProtocolV2
from tests.integration.sshkit import PASSWORD, client_key

CLIENT_ADDRESS = "127.0.0.2"
TEMP_PREFIX = ".ferryd-upload."


def payload(name: str, size: int) -> bytes:
    """Content that only the upload called ``name`` has, the same every time."""
    return hashlib.shake_256(name.encode()).digest(size)


def write_client_key(folder: Path) -> Path:
    """The shared client key (sshkit's, which ``account_section`` authorizes) for OpenSSH."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "client_key"
    client_key().write_private_key(str(path))
    path.chmod(0o600)
    return path


def openssh_options(key_file: Path, *, bind: str | None = CLIENT_ADDRESS) -> list[str]:
    """OpenSSH options isolated from the machine (as sshkit's), optionally from ``bind``."""
    options = [
        "-F", "/dev/null",
        "-o", "IdentitiesOnly=yes",
        "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null",
        "-o", "BatchMode=yes",
        "-o", "LogLevel=ERROR",
        "-o", "ConnectTimeout=2",
        "-i", str(key_file),
    ]  # fmt: skip
    if bind is not None:
        options += ["-o", f"BindAddress={bind}"]
    return options


def sftp_batch(
    key_file: Path,
    host: str,
    port: int,
    user: str,
    commands: Sequence[str],
    *,
    bind: str | None = CLIENT_ADDRESS,
    prefix: Sequence[str] = (),
    timeout: float = 30.0,
) -> subprocess.CompletedProcess[str]:
    """OpenSSH ``sftp -b -`` (a failing command stops it); ``prefix`` runs it elsewhere
    (``ip netns exec NS``). Past ``timeout`` its process group (sftp and its ssh) is killed
    and the run counts as failed: a connection cut without a reset would otherwise hang."""
    args = [*prefix, "sftp", "-P", str(port), *openssh_options(key_file, bind=bind)]
    args += ["-b", "-", f"{user}@{host}"]
    process = subprocess.Popen(
        args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate("\n".join(commands) + "\n", timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        err += f"\nno answer within {timeout} s"
    return subprocess.CompletedProcess(args, process.returncode, out, err)


async def connect(
    port: int,
    user: str,
    *,
    host: str = "127.0.0.1",
    bind: str = CLIENT_ADDRESS,
    password: bool = False,
    timeout: float = 10.0,
) -> asyncssh.SSHClientConnection:
    """An asyncssh connection from ``bind`` (through HAProxy, usually), by key or password."""
    return await asyncssh.connect(
        host,
        port,
        local_addr=(bind, 0),
        username=user,
        password=PASSWORD if password else None,
        client_keys=[] if password else [client_key()],
        preferred_auth="password" if password else "publickey",
        known_hosts=None,
        connect_timeout=timeout,
    )


def proxy_header(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """The PROXY v2 header HAProxy would send for a client at ``source``."""
    result = ProxyResultIPv4(
        (ipaddress.IPv4Address(source[0]), source[1]),
        (ipaddress.IPv4Address(destination[0]), destination[1]),
    )
    return bytes(ProxyProtocolV2().pack(result))


async def connect_with_header(
    port: int,
    user: str,
    *,
    source: tuple[str, int] = (CLIENT_ADDRESS, 50000),
    bind: str = "127.0.0.1",
    host: str = "127.0.0.1",
    timeout: float = 10.0,
) -> asyncssh.SSHClientConnection:
    """Straight to one node, from ``bind``, with our own header claiming ``source``: what
    HAProxy does, without HAProxy choosing the node."""
    raw = socket.create_connection((host, port), timeout=timeout, source_address=(bind, 0))
    try:
        raw.sendall(proxy_header(source, (host, port)))
        raw.setblocking(False)
        return await asyncssh.connect(
            sock=raw,
            username=user,
            client_keys=[client_key()],
            preferred_auth="publickey",
            known_hosts=None,
            connect_timeout=timeout,
        )
    except BaseException:
        raw.close()
        raise


def listener_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a node's SSH port accepts connections; the probe is a PROXY v2 LOCAL header,
    which ferryd closes quietly (event 30078), as HAProxy's own probes would be."""
    try:
        with socket.create_connection((host, port), timeout=1) as probe:
            probe.sendall(bytes(ProxyProtocolV2().pack(ProxyResultLocal())))
    except ConnectionRefusedError:
        return False
    return True


async def upload(
    connection: asyncssh.SSHClientConnection, name: str, data: bytes, chunk: int = 65536
) -> None:
    async with connection.start_sftp_client() as sftp, sftp.open(name, "wb") as remote:
        for offset in range(0, len(data), chunk):
            await remote.write(data[offset : offset + chunk], offset)


async def listing(port: int, user: str) -> list[str]:
    """The names a client sees in its home folder (through ``port``)."""
    names: list[str] = []
    async with await connect(port, user) as connection, connection.start_sftp_client() as sftp:
        names = sorted(str(name) for name in await sftp.listdir("."))
    return names


@dataclass
class Attempt:
    """One connect + upload by a client, timed with ``time.monotonic()``."""

    name: str
    started: float
    ended: float = 0.0
    error: str = ""
    local_port: int = 0

    @property
    def ok(self) -> bool:
        return self.ended > 0 and not self.error


async def attempt_upload(port: int, user: str, name: str, size: int) -> Attempt:
    """Connect through ``port`` (HAProxy), upload ``payload(name, size)`` as ``name``."""
    attempt = Attempt(name, time.monotonic())
    try:
        async with await connect(port, user) as connection:
            attempt.local_port = connection.get_extra_info("sockname")[1]
            await upload(connection, name, payload(name, size))
    except Exception as error:  # whatever the client saw counts as a failure
        attempt.error = f"{type(error).__name__}: {error}"
    attempt.ended = time.monotonic()
    return attempt
