"""Case 6, event cost: the big upload on ferryd with one ``local-file`` handler writing every
event as ``{id} {message}``, against the same upload with every handler off (ferryd vs ferryd).
"""

from __future__ import annotations

from harness.context import Context
from harness.ferryd import Handlers, events_log_path
from harness.results import Goal, Measurement, skipped
from harness.server import Server, running
from harness.sftp import GCM
from harness.transfer import Transfer

from cases.bulk import rounds

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
    lines: list[int] = []
    with running(servers):
        written = [count_lines(ctx)]  # ferryd's own start-up events are in the file already

        def count(server: Server) -> None:
            if server.name == loud:
                now = count_lines(ctx)
                lines.append(now - written[-1])
                written.append(now)

        rates, cpu = rounds(ctx, transfer, servers, after=count)
    if not lines or min(lines) == 0:
        raise RuntimeError(f"{NAME}: the local-file handler wrote nothing ({lines} lines)")
    rate = Measurement(NAME, label, "MB/s", True, rates, reference=quiet, candidate=loud, goal=GOAL)
    rate.notes.append(f"event lines written per upload session: {sorted(set(lines))}")
    cost = Measurement(
        NAME, f"{label}: server CPU", "CPU s/GiB", False, cpu, reference=quiet, candidate=loud
    )
    return [rate, cost]
