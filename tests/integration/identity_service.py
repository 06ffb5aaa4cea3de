"""A real HTTP(S) identity service for the ``http`` authentication tests (reference 3.3).

It listens on a free 127.0.0.1 port (stdlib ``ThreadingHTTPServer`` in a background thread),
answers each ``POST`` as scripted for the request's username (default: 401, "unknown"), and
records every request so a test can check exactly what ferryd sent. With a
:class:`CertificateAuthority` it speaks HTTPS with a server certificate that authority issued.
:meth:`IdentityService.stop` takes it down, which is how failover tests make a URL fail.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/auth"
HOST = "127.0.0.1"

# -- what the service answers and what it saw -------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One scripted answer: ``body`` may be bytes, text, or a dict/list sent as JSON;
    ``delay`` seconds pass before it is sent (a slow service)."""

    status: int
    body: bytes | str | dict[str, Any] | list[Any] | None = None
    delay: float = 0.0

    def encoded(self) -> tuple[bytes, str]:
        if self.body is None:
            return b"", ""
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


@dataclass(frozen=True)
class Received:
    """One request as the service got it (header names lower-cased)."""

    path: str
    headers: dict[str, str]
    raw: bytes
    body: Any  # the parsed JSON, or None when it was not JSON

    @property
    def credentials(self) -> dict[str, Any]:
        if isinstance(self.body, dict) and isinstance(self.body.get("credentials"), dict):
            return self.body["credentials"]
        return {}

    @property
    def username(self) -> str:
        name = self.credentials.get("username")
        return name if isinstance(name, str) else ""


Script = Answer | Callable[[Received], Answer]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: IdentityService

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = self.socket.accept()
        tls = self.owner.tls
        if tls is not None:  # handshake in the request's thread, not the accepting one
            connection = tls.wrap_socket(
                connection, server_side=True, do_handshake_on_connect=False
            )
        return connection, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that give up (timeouts, untrusted certificates) are expected here."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10

    def setup(self) -> None:
        super().setup()
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()

    def do_POST(self) -> None:
        owner = self.server.owner
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, raw, body)
        answer = owner.record(received)
        if answer.delay and owner.stopping.wait(answer.delay):
            return
        data, content_type = answer.encoded()
        with contextlib.suppress(OSError):  # the client may have given up by now
            self.send_response(answer.status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads :attr:`IdentityService.requests` instead."""


@dataclass
class IdentityService:
    """The service; use it as a context manager or call :meth:`start` and :meth:`stop`."""

    default: Answer = field(default_factory=lambda: Answer(401))
    tls: ssl.SSLContext | None = None
    requests: list[Received] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    _script: dict[str, Script] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: _Server | None = None
    _thread: threading.Thread | None = None
    port: int = 0

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{HOST}:{self.port}{PATH}"

    def answer(self, username: str, script: Script) -> None:
        """How to answer ``username``: an :class:`Answer`, or a function of the request."""
        with self._lock:
            self._script[username] = script

    def record(self, received: Received) -> Answer:
        with self._lock:
            self.requests.append(received)
            script = self._script.get(received.username, self.default)
        return script(received) if callable(script) else script

    def requests_for(self, username: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.username == username]

    def start(self) -> IdentityService:
        server = _Server((HOST, 0), _Handler)
        server.owner = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and close the port: connections to it are refused from now on."""
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> IdentityService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def down_url() -> str:
    """The URL of a service that has stopped: nothing listens there any more."""
    service = IdentityService().start()
    service.stop()
    return service.url
