"""Case 1, bulk: one big file up and down, two ciphers, default and 32 KiB requests.

Throughput is the whole sftp session (connect, key exchange, login, transfer); the server's
CPU seconds per GiB come from /proc (for OpenSSH, its sshd and sftp-server processes too).
"""

from __future__ import annotations

from collections.abc import Callable

from harness.context import Context
from harness.results import Goal, Measurement
from harness.server import Server, running
from harness.sftp import CHACHA, GCM
from harness.transfer import Transfer, run_transfer

NAME = "bulk"
SMALL_REQUESTS = 32 * 1024


def transfers(size: int) -> list[Transfer]:
    """The measured transfers, in the order they run."""
    return [
        Transfer(direction, size, cipher, request_size)
        for request_size in (None, SMALL_REQUESTS)
        for cipher in (GCM, CHACHA)
        for direction in ("upload", "download")
    ]


Series = dict[str, list[float]]


def rounds(
    ctx: Context,
    transfer: Transfer,
    servers: list[Server],
    after: Callable[[Server], None] | None = None,
) -> tuple[Series, Series]:
    """MB/s and server CPU s/GiB of ``transfer`` per server, alternating rounds, with a
    progress line each; ``after`` runs after every round (the events case counts lines)."""
    rates: Series = {server.name: [] for server in servers}
    cpu: Series = {server.name: [] for server in servers}
    width = max(len(server.name) for server in servers)
    for round_index, server in ctx.alternate(servers):
        timing = run_transfer(transfer, server, ctx.workspace, check=round_index == 0)
        if after is not None:
            after(server)
        rates[server.name].append(timing.mb_per_s(transfer.size))
        cpu[server.name].append(timing.cpu_per_gib(transfer.size))
        ctx.progress(
            f"{transfer.label:<52} {server.name:<{width}}"
            f" round {round_index + 1}/{ctx.scale.rounds}:"
            f" {timing.seconds:6.2f} s {rates[server.name][-1]:7.1f} MB/s"
            f" {cpu[server.name][-1]:5.2f} CPU s/GiB"
        )
    return rates, cpu


def measure(ctx: Context, transfer: Transfer, goal: Goal | None) -> list[Measurement]:
    """Throughput and CPU per GiB of one transfer on every server, alternating."""
    rates, cpu = rounds(ctx, transfer, ctx.pair())
    return [
        Measurement(NAME, transfer.label, "MB/s", True, rates, goal=goal),
        Measurement(NAME, f"{transfer.label}: server CPU", "CPU s/GiB", False, cpu),
    ]


def run(ctx: Context) -> list[Measurement]:
    """Every transfer in turn on fresh servers."""
    results: list[Measurement] = []
    with running(ctx.pair()):
        for transfer in transfers(ctx.scale.big_file):
            goal = Goal(">=", 1.0 if transfer.request_size is None else 0.8)
            results += measure(ctx, transfer, goal)
    return results
