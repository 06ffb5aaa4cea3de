"""Whether a remote backend accepts connections, for readiness checks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from ferryd.lifecycle import Readiness


async def reachable(targets: Iterable[tuple[str, int]], timeout: float = 2.0) -> Readiness:
    """Whether any of ``targets`` accepts a TCP connection (failover: one is enough)."""
    problems = []
    for host, port in targets:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        except (OSError, TimeoutError) as error:
            reason = getattr(error, "strerror", None) or str(error) or "no answer"
            problems.append(f"{host}:{port}: {reason}")
            continue
        writer.close()
        return Readiness(True, f"{host}:{port} accepts connections")
    return Readiness(False, "; ".join(problems) or "no server configured")
