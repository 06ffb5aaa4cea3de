"""``ferryd bans list`` and ``ferryd bans remove ADDRESS``: the administrator's view of bans.

They work on the state store named by the configuration, whether or not a node runs: a node
notices a lifted ban within a second (event 50008), and the Web Manager will call the same
functions.
"""

from __future__ import annotations

import ipaddress
import sqlite3
import time
from datetime import UTC, datetime

from ferryd.cluster.coordinator import Ban
from ferryd.cluster.embedded import EmbeddedCoordinator
from ferryd.config.configuration import Configuration


class StateStoreError(Exception):
    """The state store is missing or unreadable; the message names its path."""


def _existing_store(configuration: Configuration) -> EmbeddedCoordinator:
    """The store a node of this configuration uses; never creates one (a mistyped
    ``state_database`` must not look like a store with no bans)."""
    path = configuration.resolve_path(configuration.server.state_database)
    if not path.is_file():
        raise StateStoreError(
            f"no state store at {path} ([server] state_database): has a node run with this "
            "configuration?"
        )
    return EmbeddedCoordinator(path)


async def list_bans(configuration: Configuration) -> list[Ban]:
    coordinator = _existing_store(configuration)
    try:
        return await coordinator.active_bans(time.time())
    except sqlite3.Error as error:
        raise StateStoreError(f"cannot read {coordinator.path}: {error}") from None
    finally:
        await coordinator.close()


async def remove_bans(
    configuration: Configuration, address: str, scope: str | None = None
) -> list[Ban]:
    """Raises ValueError for something that is not an IP address."""
    canonical = str(ipaddress.ip_address(address.strip()))
    coordinator = _existing_store(configuration)
    try:
        return await coordinator.remove_bans(canonical, scope)
    except sqlite3.Error as error:
        raise StateStoreError(f"cannot update {coordinator.path}: {error}") from None
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
