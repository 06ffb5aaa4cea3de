"""Case 2, small files: a folder of 4 KiB files up (``put -r``) and down (``get -r``) in one
sftp session each, so the cost per file (open, write or read, close, mkdir, stat) dominates."""

from __future__ import annotations

import os

from harness.context import Context
from harness.results import Goal, Measurement
from harness.server import Server, running
from harness.sftp import GCM, quote, write_batch
from harness.transfer import Timing, timed_batch
from harness.workspace import link_tree, remove, size_label, tree_size

NAME = "small-files"
GOAL = Goal(">=", 0.9)


def one_round(ctx: Context, server: Server, direction: str, check: bool) -> Timing:
    """One recursive transfer of the whole folder; verified when ``check``, then removed."""
    scale = ctx.scale
    source = ctx.workspace.small_files(scale.small_files, scale.small_file)
    batch = ctx.workspace.root / "batch.txt"
    if direction == "up":
        arrived = server.local_root / "many"
        write_batch(batch, f"put -r {quote(source)} {quote(server.remote('many'))}")
    else:
        link_tree(source, server.local_root / "many-source")
        arrived = ctx.workspace.scratch / "many"
        write_batch(batch, f"get -r {quote(server.remote('many-source'))} {quote(arrived)}")
    timing = timed_batch(server, ctx.workspace, batch, GCM, None)
    try:
        expected = (scale.small_files, scale.small_files * scale.small_file)
        if check and tree_size(arrived) != expected:
            raise RuntimeError(
                f"{NAME} {direction} on {server.name}: expected (files, bytes) {expected},"
                f" found {tree_size(arrived)}"
            )
    finally:
        remove(arrived)
        os.sync()
    return timing


def measure(ctx: Context, direction: str) -> list[Measurement]:
    """Files per second and server CPU per file, alternating servers."""
    scale = ctx.scale
    label = f"{direction} {scale.small_files:,} x {size_label(scale.small_file)} (one session)"
    servers = ctx.pair()
    rates: dict[str, list[float]] = {server.name: [] for server in servers}
    cpu: dict[str, list[float]] = {server.name: [] for server in servers}
    for round_index, server in ctx.alternate(servers):
        timing = one_round(ctx, server, direction, round_index == 0)
        rates[server.name].append(scale.small_files / timing.seconds)
        cpu[server.name].append(timing.cpu_seconds * 1000 / scale.small_files)
        ctx.progress(
            f"{label:<40} {server.name:<8} round {round_index + 1}/{scale.rounds}:"
            f" {timing.seconds:6.2f} s {rates[server.name][-1]:7.0f} files/s"
            f" {cpu[server.name][-1]:5.2f} CPU ms/file"
        )
    return [
        Measurement(NAME, label, "files/s", True, rates, goal=GOAL),
        Measurement(NAME, f"{label}: server CPU", "CPU ms/file", False, cpu),
    ]


def run(ctx: Context) -> list[Measurement]:
    """Upload, then download, on fresh servers."""
    with running(ctx.pair()):
        return measure(ctx, "up") + measure(ctx, "down")
