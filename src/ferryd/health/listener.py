"""A tiny HTTP/1.1 listener for ``/health/live`` and ``/health/ready``.

Load balancers probe every second or so: each probe is one GET on its own connection,
answered with JSON and closed. h11 parses the protocol; nothing here is a web framework,
so the listener stays up as long as the event loop does and costs nothing between probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import h11

_READ_TIMEOUT = 5.0
_MAX_REQUEST = 16 * 1024
_MAX_CONNECTIONS = 64  # probes are one at a time per balancer; more is someone else


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any]


Route = Callable[[], Awaitable[Answer]]


class HealthListener:
    def __init__(self, routes: dict[str, Route]) -> None:
        self._routes = routes
        self._server: asyncio.Server | None = None
        self._open = 0
        self.address = ""

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, address: str, port: int) -> None:
        self._server = await asyncio.start_server(
            self._serve, address, port, reuse_address=True, limit=_MAX_REQUEST
        )
        self.address = address

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open += 1
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_REQUEST)
        try:
            if self._open > _MAX_CONNECTIONS:
                return  # closed at once: a flood must not take the node's descriptors
            request = await asyncio.wait_for(self._request(reader, connection), _READ_TIMEOUT)
            if request is not None:
                answer = await self._answer(request)
                head_only = request.method == b"HEAD"
                writer.write(self._response(connection, answer, head_only))
                await writer.drain()
        except (TimeoutError, OSError, h11.ProtocolError):
            pass  # a probe that hung up or spoke garbage gets nothing
        finally:
            self._open -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _request(
        reader: asyncio.StreamReader, connection: h11.Connection
    ) -> h11.Request | None:
        while True:
            event = connection.next_event()
            if isinstance(event, h11.Request):
                return event
            if event is h11.NEED_DATA:
                data = await reader.read(4096)
                connection.receive_data(data)
                if not data and connection.their_state is h11.IDLE:
                    return None
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _answer(self, request: h11.Request) -> Answer:
        if request.method not in (b"GET", b"HEAD"):
            return Answer(405, {"error": "only GET and HEAD are answered here"})
        path = request.target.decode("ascii", "replace").split("?", 1)[0]
        route = self._routes.get(path)
        if route is None:
            return Answer(404, {"error": f"no such path {path}", "paths": sorted(self._routes)})
        try:
            return await route()
        except Exception as error:
            # Say what broke, instead of a dropped connection the balancer cannot explain.
            return Answer(500, {"error": f"{path} failed: {error!r}"})

    @staticmethod
    def _response(connection: h11.Connection, answer: Answer, head_only: bool) -> bytes:
        """The status and JSON body; HEAD (some balancers' checks) gets the status alone."""
        body = (json.dumps(answer.body, indent=2) + "\n").encode("utf-8")
        head = h11.Response(
            status_code=answer.status,
            headers=[
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                ("Connection", "close"),
            ],
        )
        events = [head] if head_only else [head, h11.Data(data=body)]
        return b"".join(connection.send(e) or b"" for e in [*events, h11.EndOfMessage()])
