"""An asyncssh client in this process, for the cases that need many sessions or many logins.

Every connection uses the algorithms the sftp client is pinned to (curve25519-sha256,
ssh-ed25519, aes128-gcm) and no compression (sshd would otherwise agree to zlib after login,
which the sftp client never asks for). Nothing is read from ~/.ssh or an agent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from harness.server import Server
from harness.sftp import GCM, HOST_KEY, KEX

T = TypeVar("T")


def client_options(server: Server, *, key: Path | None = None, password: str = "") -> Any:
    """Options for key logins (``key``) or password logins as the server's password user."""
    auth: dict[str, Any]
    if key is not None:
        user, auth = server.user, {"client_keys": [str(key)], "preferred_auth": "publickey"}
    elif server.password_user is not None:
        user = server.password_user
        auth = {"client_keys": None, "password": password, "preferred_auth": "password"}
    else:
        raise ValueError(f"{server.name} has no account for password logins")
    return asyncssh.SSHClientConnectionOptions(
        username=user,
        known_hosts=None,
        agent_path=None,
        kex_algs=[KEX],
        server_host_key_algs=[HOST_KEY],
        encryption_algs=[GCM],
        compression_algs=["none"],
        **auth,
    )


async def connect(server: Server, options: Any) -> Any:
    """An authenticated connection (an ``asyncssh.SSHClientConnection``)."""
    return await asyncssh.connect("127.0.0.1", server.port, options=options, config=None)


async def login(server: Server, options: Any) -> None:
    """Connect, authenticate and close: one login."""
    connection = await connect(server, options)
    connection.close()
    await connection.wait_closed()


async def in_parallel(count: int, width: int, job: Callable[[], Awaitable[None]]) -> None:
    """Run ``job`` ``count`` times with at most ``width`` running at once."""
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await job()

    await asyncio.gather(*(worker() for _ in range(min(width, count))))


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a client coroutine on a fresh event loop (uvloop when installed, as ferryd uses)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
