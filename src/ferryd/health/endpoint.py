"""The node's health endpoint: which listener runs, and what its two paths answer.

``/health/live`` answers as long as the event loop does (a supervisor restarts a process
that stops answering). ``/health/ready`` answers 200 only when a client sent here now would
be served; it fails as soon as the node starts draining, before anything else stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ferryd.config.configuration import Configuration
from ferryd.config.problems import ConfigurationError, Problem
from ferryd.events.bus import EventBus
from ferryd.health.listener import Answer, HealthListener
from ferryd.health.readiness import Check, FolderChecks, storage_folders
from ferryd.lifecycle import Component, Readiness

Key = tuple[str, str]


class HealthEndpoint:
    def __init__(
        self,
        bus: EventBus,
        configuration: Callable[[], Configuration | None],
        components: Callable[[], dict[Key, Component[Any]]],
        failures: Callable[[], dict[Key, str]],
    ) -> None:
        self._bus = bus
        self._configuration = configuration
        self._components = components
        self._failures = failures
        self._listener: HealthListener | None = None
        self._bound: tuple[str, int] | None = None  # as configured (port 0 stays 0)
        self._folders = FolderChecks()
        self._folder_list: tuple[str, list[Path]] = ("", [])
        self._started = time.monotonic()
        self.draining = False
        self.last_refusal = ""

    @property
    def listening(self) -> bool:
        return self._listener is not None

    @property
    def port(self) -> int | None:
        return self._listener.port if self._listener is not None else None

    async def apply(self, configuration: Configuration, starting: bool) -> None:
        """Listen where ``[server]`` says; a failure refuses the start, or keeps the old
        listener on a reload (event 20265)."""
        server = configuration.server
        wanted = None if server.health_port is None else (server.health_address, server.health_port)
        if wanted == self._bound:
            return
        old = (self._listener.address, self._listener.port) if self._listener else None
        if wanted is None:
            await self._close()
            return
        if old is not None and old[1] == wanted[1]:
            await self._close()  # the same port: free it before binding again
        try:
            listener = await self._listen(*wanted)
        except OSError as error:
            reason = error.strerror or str(error)
            if starting:
                message = f"cannot listen on {wanted[0]}:{wanted[1]}: {reason}"
                where = str(configuration.files[0])
                problem = Problem(where, 0, message, "server", "health_port")
                raise ConfigurationError([problem]) from None
            self._bus.emit("20265", address=wanted[0], port=wanted[1], reason=reason)
            if old is not None and self._listener is None:
                # Freed for nothing: answer where it answered before.
                with contextlib.suppress(OSError):
                    self._listener = await self._listen(*old)
                    self._bound = old
            return
        if self._listener is not None:
            await self._listener.stop()
        self._listener, self._bound = listener, wanted
        self._bus.emit(
            "20262", node_name=configuration.node_name, address=wanted[0], port=listener.port
        )

    async def _listen(self, address: str, port: int) -> HealthListener:
        listener = HealthListener({"/health/live": self._live, "/health/ready": self._ready})
        await listener.start(address, port)
        return listener

    async def _close(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
        self._listener = None
        self._bound = None

    async def stop(self) -> None:
        await self._close()
        self._folders.close()

    # -- the answers -------------------------------------------------------------------

    async def _live(self) -> Answer:
        configuration = self._configuration()
        return Answer(
            200,
            {
                "status": "live",
                "node": configuration.node_name if configuration else "",
                "pid": os.getpid(),
                "uptime": round(time.monotonic() - self._started, 1),
            },
        )

    async def _ready(self) -> Answer:
        configuration = self._configuration()
        if configuration is None:
            return Answer(503, {"status": "not-ready", "node": "", "checks": []})
        # At once: a slow backend and a slow disk each get their own deadline, not the sum.
        components, folders = await asyncio.gather(
            self._component_checks(configuration), self._folders.run(self._storage(configuration))
        )
        checks = [self._configuration_check(configuration), *components, *folders]
        if self.draining:
            status = "draining"
        else:
            status = "ready" if all(c.ok for c in checks) else "not-ready"
        body = {
            "status": status,
            "node": configuration.node_name,
            "checks": [c.as_json() for c in checks],
        }
        return Answer(200 if status == "ready" else 503, body)

    def _configuration_check(self, configuration: Configuration) -> Check:
        detail = f"loaded from {configuration.files[0]}"
        if self.last_refusal:
            # Still serving the last good configuration: ready, but say why an edit is not live.
            detail += f"; the last change was refused: {self.last_refusal}"
        return Check("configuration", True, detail)

    async def _component_checks(self, configuration: Configuration) -> list[Check]:
        components = self._components()
        failures = self._failures()
        names: list[str] = []
        pending: list[asyncio.Future[Readiness | None]] = []
        missing: list[Check] = []
        for section in configuration.components_here():
            model = section.model
            name = f"{section.kind}/{section.uuid}"
            component = components.get(section.key)
            if component is not None:
                names.append(name)
                pending.append(asyncio.ensure_future(component.readiness()))
            elif section.kind == "services" or getattr(model, "readiness_check", False):
                failure = failures.get(section.key) or "not started"
                missing.append(Check(name, False, f"not running: {failure}"))
        found = await asyncio.gather(*pending, return_exceptions=True)
        checks = [
            Check(name, False, f"the readiness check failed: {result!r}")
            if isinstance(result, BaseException)
            else Check(name, result.ok, result.detail)
            for name, result in zip(names, found, strict=True)
            if result is not None
        ]
        return checks + missing

    def _storage(self, configuration: Configuration) -> list[Path]:
        if self._folder_list[0] != configuration.fingerprint:
            self._folder_list = (configuration.fingerprint, storage_folders(configuration))
        return self._folder_list[1]
