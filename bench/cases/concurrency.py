"""Case 3, concurrency: many OpenSSH sftp processes upload a file each, all at once.

Each session is a separate sftp process (connect, login, ``put``), as separate users would
be; the aggregate rate is all payload over the time from the first start to the last exit.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass

from harness.context import Context
from harness.proc import tree_cpu_seconds, wait_for_no_children
from harness.results import Goal, Measurement, percentile
from harness.server import Server, running
from harness.sftp import GCM, quote, run_batch_async, write_batch
from harness.workspace import GIB, remove, size_label, tree_size

NAME = "concurrency"
GOAL = Goal(">=", 1.5)


@dataclass(frozen=True)
class Burst:
    """Result of one round: wall time of the whole burst and of every session."""

    seconds: float
    sessions: list[float]
    cpu_seconds: float


async def burst(ctx: Context, server: Server) -> tuple[float, list[float]]:
    """Start every session at once and wait for all of them."""
    scale = ctx.scale
    source = ctx.workspace.random_file("session", scale.session_bytes)
    batches = [
        write_batch(
            ctx.workspace.root / f"batch-{index}.txt",
            f"put {quote(source)} {quote(server.remote(f'session-{index}.bin'))}",
        )
        for index in range(scale.sessions)
    ]
    started = time.perf_counter()
    sessions = await asyncio.gather(
        *(run_batch_async(server, ctx.workspace.key, batch, GCM) for batch in batches)
    )
    return time.perf_counter() - started, list(sessions)


def one_round(ctx: Context, server: Server, check: bool) -> Burst:
    """One burst, checked when ``check``; the uploads are removed and synced afterwards."""
    scale = ctx.scale
    wait_for_no_children(server.pid)
    cpu_before = tree_cpu_seconds(server.pid)
    seconds, sessions = asyncio.run(burst(ctx, server))
    wait_for_no_children(server.pid)
    cpu_seconds = tree_cpu_seconds(server.pid) - cpu_before
    uploads = [server.local_root / f"session-{index}.bin" for index in range(scale.sessions)]
    try:
        if check:
            sizes = [tree_size(path) for path in uploads]
            if sizes != [(1, scale.session_bytes)] * scale.sessions:
                raise RuntimeError(f"{NAME} on {server.name}: some uploads are missing or short")
    finally:
        for path in uploads:
            remove(path)
        os.sync()
    return Burst(seconds, sessions, cpu_seconds)


def run(ctx: Context) -> list[Measurement]:
    """Aggregate MB/s, p50 and p99 session time and CPU per GiB, alternating servers."""
    scale = ctx.scale
    total = scale.sessions * scale.session_bytes
    label = f"{scale.sessions} sessions x upload {size_label(scale.session_bytes)}"
    names = [server.name for server in ctx.pair()]
    rate: dict[str, list[float]] = {name: [] for name in names}
    p50: dict[str, list[float]] = {name: [] for name in names}
    p99: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    with running(ctx.pair()) as servers:
        for round_index, server in ctx.alternate(servers):
            result = one_round(ctx, server, round_index == 0)
            rate[server.name].append(total / 1e6 / result.seconds)
            p50[server.name].append(percentile(result.sessions, 0.50))
            p99[server.name].append(percentile(result.sessions, 0.99))
            cpu[server.name].append(result.cpu_seconds / (total / GIB))
            ctx.progress(
                f"{label:<34} {server.name:<8} round {round_index + 1}/{scale.rounds}:"
                f" {result.seconds:6.2f} s {rate[server.name][-1]:7.1f} MB/s"
                f" p50 {p50[server.name][-1]:5.2f} s p99 {p99[server.name][-1]:5.2f} s"
            )
    return [
        Measurement(NAME, f"{label}: aggregate", "MB/s", True, rate, goal=GOAL),
        Measurement(NAME, f"{label}: session time p50", "s", False, p50),
        Measurement(NAME, f"{label}: session time p99", "s", False, p99),
        Measurement(NAME, f"{label}: server CPU", "CPU s/GiB", False, cpu),
    ]
