"""Case 6, event cost: the big upload on ferryd with one ``local-file`` handler writing every
event as ``{id} {message}``, against the same upload with every handler off (ferryd vs ferryd).
"""

from __future__ import annotations

from harness.context import Context
from harness.ferryd import Handlers, events_log_path
from harness.results import Goal, Measurement, skipped
from harness.server import running
from harness.sftp import GCM
from harness.transfer import Transfer, run_transfer

NAME = "events"
GOAL = Goal(">=", 0.95)


def count_lines(ctx: Context) -> int:
    """Lines the handler has written so far (0 before its file exists)."""
    path = events_log_path(ctx.workspace, Handlers.EVENTS)
    return len(path.read_bytes().splitlines()) if path.exists() else 0


def run(ctx: Context) -> list[Measurement]:
    """Upload MB/s with and without the handler, alternating the two ferryd servers."""
    transfer = Transfer("upload", ctx.scale.big_file, GCM)
    label = f"{transfer.label}: local-file handler vs handlers off"
    if ctx.only == "openssh":
        return [skipped(NAME, label, "ferryd not run (--only openssh)", GOAL)]
    quiet, loud = Handlers.OFF.value, Handlers.EVENTS.value
    servers = [ctx.server(quiet), ctx.server(loud)]
    rates: dict[str, list[float]] = {quiet: [], loud: []}
    cpu: dict[str, list[float]] = {quiet: [], loud: []}
    lines: list[int] = []
    with running(servers):
        for round_index, server in ctx.alternate(servers):
            before = count_lines(ctx)
            timing = run_transfer(transfer, server, ctx.workspace, check=round_index == 0)
            if server.name == loud:
                lines.append(count_lines(ctx) - before)
            rates[server.name].append(timing.mb_per_s(transfer.size))
            cpu[server.name].append(timing.cpu_per_gib(transfer.size))
            ctx.progress(
                f"{transfer.label:<52} {server.name:<13}"
                f" round {round_index + 1}/{ctx.scale.rounds}:"
                f" {timing.seconds:6.2f} s {rates[server.name][-1]:7.1f} MB/s"
                f" {cpu[server.name][-1]:5.2f} CPU s/GiB"
            )
    if not lines or min(lines) == 0:
        raise RuntimeError(f"{NAME}: the local-file handler wrote nothing ({lines} lines)")
    rate = Measurement(NAME, label, "MB/s", True, rates, reference=quiet, candidate=loud, goal=GOAL)
    rate.notes.append(f"event lines written per upload session: {sorted(set(lines))}")
    cost = Measurement(
        NAME, f"{label}: server CPU", "CPU s/GiB", False, cpu, reference=quiet, candidate=loud
    )
    return [rate, cost]
