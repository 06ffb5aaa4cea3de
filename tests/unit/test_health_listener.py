"""The health listener's HTTP side: a route that breaks answers 500 with the reason."""

from __future__ import annotations

import asyncio
import json

from ferryd.health.listener import Answer, HealthListener


async def test_a_route_that_raises_answers_500_naming_the_error() -> None:
    """A balancer (or an operator with curl) gets a reason, not a connection closed."""

    async def broken() -> Answer:
        raise ValueError("a backend check blew up")

    async def fine() -> Answer:
        return Answer(200, {"status": "live"})

    listener = HealthListener({"/health/ready": broken, "/health/live": fine})
    await listener.start("127.0.0.1", 0)
    try:
        replies = []
        for path in ("/health/ready", "/health/live"):
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            replies.append(await asyncio.wait_for(reader.read(), 5))
            writer.close()
    finally:
        await listener.stop()
    head, _, body = replies[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 ")
    assert json.loads(body) == {
        "error": "/health/ready failed: ValueError('a backend check blew up')"
    }
    assert replies[1].startswith(b"HTTP/1.1 200 "), "the listener keeps answering"
