"""Whether a remote backend accepts connections, for readiness checks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from ferryd.lifecycle import Readiness


async def reachable(targets: Iterable[tuple[str, int]], timeout: float = 2.0) -> Readiness:
    """Whether any of ``targets`` accepts a TCP connection (failover: one is enough). All are
    tried at once under one deadline, so a probe never waits longer than ``timeout``."""
    wanted = list(targets)
    if not wanted:
        return Readiness(False, "no server configured")
    results = await asyncio.gather(*(_connects(host, port, timeout) for host, port in wanted))
    for (host, port), problem in zip(wanted, results, strict=True):
        if problem is None:
            return Readiness(True, f"{host}:{port} accepts connections")
    pairs = zip(wanted, results, strict=True)
    return Readiness(False, "; ".join(f"{h}:{p}: {why}" for (h, p), why in pairs))


async def _connects(host: str, port: int, timeout: float) -> str | None:
    """None when a connection opens, else why not."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as error:
        return getattr(error, "strerror", None) or str(error) or "no answer"
    writer.close()
    return None
