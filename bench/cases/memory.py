"""Case 5, memory: server memory per idle, authenticated SFTP session.

One asyncssh client process opens the sessions (connect, key login, SFTP subsystem started
and initialised) and leaves them idle. Memory is the PSS (proportional set size, from
/proc/PID/smaps_rollup) of all the server's processes: for OpenSSH the listener plus every
session's sshd and sftp-server, so the pages they share are split between them rather than
counted once per process. Per session = (total with the sessions open - idle baseline) / n.
The baseline is measured once per server, after one warm-up session, before the first round.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from harness import sshclient
from harness.context import Context
from harness.proc import tree_pss_kib, wait_for_no_children
from harness.results import Goal, Measurement
from harness.server import Server, running

NAME = "memory"
GOAL = Goal("<=", 0.05)
OPENING_WIDTH = 20  # sessions being opened at once
SETTLE_SECONDS = 1.0


async def open_sessions(server: Server, client: Any, count: int) -> float:
    """Open ``count`` idle SFTP sessions, measure the server's PSS in KiB, close them."""
    connections: list[Any] = []

    async def open_one() -> None:
        connection = await sshclient.connect(server, client)
        connections.append(connection)
        sftp = await connection.start_sftp_client()
        await sftp.realpath(".")  # one round trip: the server's SFTP session is running

    try:
        await sshclient.in_parallel(count, OPENING_WIDTH, open_one)
        await asyncio.sleep(SETTLE_SECONDS)
        return await asyncio.to_thread(tree_pss_kib, server.pid)
    finally:
        for connection in connections:
            connection.close()
        for connection in connections:
            with contextlib.suppress(Exception):
                await connection.wait_closed()


def baseline_kib(server: Server, client: Any) -> int:
    """Idle PSS after one session came and went (lazy imports and caches are loaded)."""
    sshclient.run(open_sessions(server, client, 1))
    wait_for_no_children(server.pid)
    sshclient.run(asyncio.sleep(SETTLE_SECONDS))
    return tree_pss_kib(server.pid)


def run(ctx: Context) -> list[Measurement]:
    """MiB per session, alternating servers, on fresh servers."""
    count = ctx.scale.idle_sessions
    label = f"{count} idle SFTP sessions: PSS per session"
    per_session: dict[str, list[float]] = {}
    with running(ctx.pair()) as servers:
        clients = {s.name: sshclient.client_options(s, key=ctx.workspace.key) for s in servers}
        baselines = {s.name: baseline_kib(s, clients[s.name]) for s in servers}
        for round_index, server in ctx.alternate(servers):
            total = sshclient.run(open_sessions(server, clients[server.name], count))
            wait_for_no_children(server.pid)
            value = (total - baselines[server.name]) / count / 1024
            per_session.setdefault(server.name, []).append(value)
            ctx.progress(
                f"{label} {server.name:<8} round {round_index + 1}/{ctx.scale.rounds}:"
                f" idle {baselines[server.name] / 1024:6.1f} MiB, open {total / 1024:7.1f} MiB,"
                f" {value:6.3f} MiB/session"
            )
    baseline_note = ", ".join(f"{name} {kib / 1024:.1f} MiB" for name, kib in baselines.items())
    measurement = Measurement(NAME, label, "MiB/session", False, per_session, goal=GOAL)
    measurement.notes.append(f"idle baseline PSS: {baseline_note}")
    return [measurement]
