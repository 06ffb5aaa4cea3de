"""The accept loop services share: every address a name resolves to, one port."""

from __future__ import annotations

import asyncio
import os
import resource
import socket

import pytest

from ferryd.services.listener import Listener


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def _no_name_resolves_to_ipv4_and_ipv6() -> bool:
    """Whether this machine resolves a passive "no name" to both wildcards."""
    found = {i[0] for i in socket.getaddrinfo(None, 0, flags=socket.AI_PASSIVE)}
    return {socket.AF_INET, socket.AF_INET6} <= found


async def _greets(host: str, port: int) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        return await asyncio.wait_for(reader.read(100), 5)
    finally:
        writer.close()


async def _hello(sock: socket.socket) -> None:
    await asyncio.get_running_loop().sock_sendall(sock, b"hello")
    sock.close()


@pytest.mark.skipif(
    not (_has_ipv6_loopback() and _no_name_resolves_to_ipv4_and_ipv6()),
    reason="no IPv6 loopback, or no name does not resolve to both wildcards, on this machine",
)
async def test_an_address_resolving_to_ipv4_and_ipv6_is_served_on_both() -> None:
    """Here: no name, which resolves to the IPv4 and the IPv6 wildcard (as `localhost` does to
    127.0.0.1 and ::1 on many systems); both get the same port."""
    listener = await Listener.open("", 0, _hello)
    try:
        assert await _greets("127.0.0.1", listener.port) == b"hello"
        assert await _greets("::1", listener.port) == b"hello"
    finally:
        listener.close()


async def test_closing_frees_the_port_and_refuses_new_connections() -> None:
    listener = await Listener.open("127.0.0.1", 0, _hello)
    port = listener.port
    assert await _greets("127.0.0.1", port) == b"hello"
    listener.close()
    with pytest.raises(OSError):
        await _greets("127.0.0.1", port)
    again = await Listener.open("127.0.0.1", port, _hello)  # the port is free again
    again.close()


@pytest.mark.skipif(
    not (_has_ipv6_loopback() and _no_name_resolves_to_ipv4_and_ipv6()),
    reason="no IPv6 loopback, or no name does not resolve to both wildcards, on this machine",
)
async def test_out_of_descriptors_on_both_sockets_is_one_episode_said_once() -> None:
    """The IPv4 and IPv6 sockets share the process's descriptors: when both fail to accept,
    the trouble is told once, and its end once."""
    told: list[tuple[int, str | None]] = []
    listener = await Listener.open("", 0, _hello, lambda p, why, _: told.append((p, why)))
    port = listener.port
    clients = [socket.create_connection((host, port)) for host in ("127.0.0.1", "::1")]
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = len(os.listdir("/proc/self/fd")) - 1  # less the one listdir itself held
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (in_use, limits[1]))  # no descriptor left
        await asyncio.sleep(0.3)  # both accept loops fail, and retry
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)
        async with asyncio.timeout(5):
            while len(told) < 2:
                await asyncio.sleep(0.05)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)
        for client in clients:
            client.close()
        listener.close()
    assert told == [(port, "Too many open files"), (port, None)]
