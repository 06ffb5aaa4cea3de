"""``ferryd bans list`` and ``ferryd bans remove ADDRESS``: the administrator's view of bans.

They work on the state store named by the configuration, whether or not a node runs: a node
notices a lifted ban within a second (event 50008), and the Web Manager will call the same
functions.
"""

from __future__ import annotations

import ipaddress
import time
from datetime import UTC, datetime
from pathlib import Path

from ferryd.cluster.coordinator import Ban
from ferryd.cluster.embedded import EmbeddedCoordinator
from ferryd.config.loader import load_configuration


def state_path(config_dir: Path) -> Path:
    configuration = load_configuration(config_dir)
    return configuration.resolve_path(configuration.server.state_database)


async def list_bans(config_dir: Path) -> list[Ban]:
    coordinator = EmbeddedCoordinator(state_path(config_dir))
    try:
        return await coordinator.active_bans(time.time())
    finally:
        await coordinator.close()


async def remove_bans(config_dir: Path, address: str, scope: str | None = None) -> list[Ban]:
    """Raises ValueError for something that is not an IP address."""
    canonical = str(ipaddress.ip_address(address.strip()))
    coordinator = EmbeddedCoordinator(state_path(config_dir))
    try:
        return await coordinator.remove_bans(canonical, scope)
    finally:
        await coordinator.close()


def _moment(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render(bans: list[Ban]) -> str:
    if not bans:
        return "No address is banned.\n"
    rows = [("ADDRESS", "SCOPE", "SINCE", "UNTIL", "FAILURES", "LAST REASON")]
    rows += [
        (b.address, b.scope, _moment(b.created), _moment(b.until), str(b.failures), b.reason)
        for b in bans
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[5]
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"
