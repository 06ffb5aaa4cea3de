"""Case 4, logins: connect, authenticate and close, one at a time and 20 at a time.

The client is asyncssh in this process for both servers. Public-key logins use the client
key; password logins use the same sha512-crypt hash on both servers (see harness/sysuser.py)
and are skipped, with the reason in the table, when that account cannot be created.
"""

from __future__ import annotations

import time
from typing import Any

from harness import sshclient
from harness.context import Context
from harness.proc import wait_for_no_children
from harness.results import Goal, Measurement, skipped
from harness.server import Server, running

NAME = "logins"
# (method, parallel) -> target; key logins one at a time are measured without a target.
GOALS = {
    ("publickey", True): Goal(">=", 3.0),
    ("password", False): Goal(">=", 1.0),
    ("password", True): Goal(">=", 1.0),
}


def options(ctx: Context, server: Server, method: str) -> Any:
    """Client options for one method on one server."""
    if method == "publickey":
        return sshclient.client_options(server, key=ctx.workspace.key)
    return sshclient.client_options(server, password=ctx.account.password)


def logins_per_second(server: Server, client: Any, count: int, width: int) -> float:
    """``count`` logins, ``width`` at a time, over the wall time they took."""

    async def main() -> float:
        started = time.perf_counter()
        await sshclient.in_parallel(count, width, lambda: sshclient.login(server, client))
        return count / (time.perf_counter() - started)

    rate = sshclient.run(main())
    wait_for_no_children(server.pid)  # sshd's session processes exit after the client
    return rate


def measure(ctx: Context, servers: list[Server], method: str, parallel: bool) -> Measurement:
    """Logins per second for one method and mode, alternating servers."""
    scale = ctx.scale
    width = scale.login_width if parallel else 1
    count = scale.parallel_logins if parallel else scale.sequential_logins
    label = f"{method}, {f'{width} in parallel' if parallel else 'one at a time'}"
    goal = GOALS.get((method, parallel))
    if method == "password" and any(server.password_user is None for server in servers):
        return skipped(NAME, label, f"password logins skipped: {ctx.account.reason}", goal)
    clients = {server.name: options(ctx, server, method) for server in servers}
    rates: dict[str, list[float]] = {server.name: [] for server in servers}
    for round_index, server in ctx.alternate(servers):
        rate = logins_per_second(server, clients[server.name], count, width)
        rates[server.name].append(rate)
        ctx.progress(
            f"{label:<28} {server.name:<8} round {round_index + 1}/{scale.rounds}:"
            f" {count} logins, {rate:7.1f} logins/s"
        )
    return Measurement(NAME, label, "logins/s", True, rates, goal=goal)


def run(ctx: Context) -> list[Measurement]:
    """Both methods, sequential then parallel, on fresh servers warmed by one login each."""
    with running(ctx.pair()) as servers:
        for server in servers:
            logins_per_second(server, options(ctx, server, "publickey"), 2, 1)
        return [
            measure(ctx, servers, method, parallel)
            for method in ("publickey", "password")
            for parallel in (False, True)
        ]
