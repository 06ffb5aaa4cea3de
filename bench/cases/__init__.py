"""The benchmark cases, in the order they run and appear in the table."""

from __future__ import annotations

from harness.context import CaseFunction

from cases import bulk, concurrency, events, logins, memory, small_files

CASES: dict[str, CaseFunction] = {
    "bulk": bulk.run,
    "small-files": small_files.run,
    "concurrency": concurrency.run,
    "logins": logins.run,
    "memory": memory.run,
    "events": events.run,
}
