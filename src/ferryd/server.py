"""The supervisor: runs one component per enabled section and reconciles on every change.

``reconcile`` compares the running components with a new configuration and touches only what
differs: added sections start, removed or disabled ones stop, changed ones are reconfigured in
place (or restarted when they cannot take the change live), and everything else, including
open sessions, is left alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferryd.auth.methods.anonymous import AnonymousAuthentication
from ferryd.auth.methods.application import ApplicationAuthentication
from ferryd.auth.methods.http import HttpAuthentication
from ferryd.auth.methods.ldap import LdapAuthentication
from ferryd.auth.methods.legacy import DenyUsernameAuthentication, IpTimeBanAuthentication
from ferryd.auth.methods.local_file import LocalFileAuthentication
from ferryd.auth.policy import SecurityGuard
from ferryd.config.configuration import Configuration, Section
from ferryd.config.models import COMPONENT_KINDS, ComponentModel, changed_options
from ferryd.config.problems import Problem
from ferryd.events.bus import EventBus
from ferryd.handlers.local_file import LocalFileHandler
from ferryd.handlers.standard_stream import StandardStreamHandler
from ferryd.lifecycle import Component, ComponentContext, Reconfigured
from ferryd.services.ssh.service import SshService

Key = tuple[str, str]

COMPONENTS: dict[Key, type[Component[Any]]] = {
    ("event-handlers", "local-file"): LocalFileHandler,
    ("event-handlers", "standard-stream"): StandardStreamHandler,
    ("authentications", "application"): ApplicationAuthentication,
    ("authentications", "local-file"): LocalFileAuthentication,
    ("authentications", "http"): HttpAuthentication,
    ("authentications", "ldap"): LdapAuthentication,
    ("authentications", "anonymous"): AnonymousAuthentication,
    ("authentications", "deny-username"): DenyUsernameAuthentication,
    ("authentications", "ip-time-ban"): IpTimeBanAuthentication,
    ("services", "ssh"): SshService,
}


def component_class(section: Section) -> type[Component[Any]]:
    assert isinstance(section.model, ComponentModel)
    return COMPONENTS[(section.kind, section.model.type)]


def preflight(configuration: Configuration) -> list[Problem]:
    """Checks beyond validation for every component that would run on this node."""
    problems: list[Problem] = []
    for section in configuration.components_here():
        problems.extend(component_class(section).preflight(section, configuration))
    return problems


@dataclass
class ReconcileReport:
    started: list[Key] = field(default_factory=list)
    stopped: list[Key] = field(default_factory=list)
    reconfigured: list[Key] = field(default_factory=list)
    restarted: list[Key] = field(default_factory=list)
    unchanged: list[Key] = field(default_factory=list)
    failed: list[tuple[Key, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether anything was started, stopped, changed or failed."""
        return bool(
            self.started or self.stopped or self.reconfigured or self.restarted or self.failed
        )


class Supervisor:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.guard: SecurityGuard | None = None  # the node's, once its state store is open
        self.components: dict[Key, Component[Any]] = {}
        self.failures: dict[Key, str] = {}  # why a component that should run is not running
        self.configuration: Configuration | None = None
        self.generation = 0

    def current(self) -> Configuration:
        assert self.configuration is not None, "no configuration applied yet"
        return self.configuration

    def find(self, key: Key) -> Component[Any] | None:
        return self.components.get(key)

    async def apply(self, new: Configuration) -> ReconcileReport:
        """Make ``new`` the running configuration; the previous one is what runs until now."""
        old = self.configuration
        self.configuration = new
        if old is None or old.fingerprint != new.fingerprint:
            self.generation += 1
        return await self.reconcile(old, new)

    async def reconcile(self, old: Configuration | None, new: Configuration) -> ReconcileReport:
        """Start, stop, change or restart components until ``new`` is what runs. What stops
        or restarts here does so at once (its sessions are closed): waiting for sessions is
        the drain's job, at shutdown."""
        report = ReconcileReport()
        # The same files again (SIGHUP, a referenced file): only what failed is tried again.
        retried = old is not None and old.fingerprint == new.fingerprint
        wanted = {s.key: s for s in new.components()}
        for key in reversed(list(self.components)):
            section = wanted.get(key)
            model = section.model if section else None
            if not isinstance(model, ComponentModel) or not model.runs_on(new.node_name):
                await self._stop(key, 0.0)
                report.stopped.append(key)
        for key, section in wanted.items():
            model = section.model
            assert isinstance(model, ComponentModel)
            running = self.components.get(key)
            if not model.runs_on(new.node_name):
                if model.enabled and (old is None or old.sections.get(key) != section):
                    self._not_placed(section, model, new)
                continue
            if running is None:
                await self._start(section, report)
            elif running.model == model:
                report.unchanged.append(key)
            elif await self._reconfigure(section, running, report):
                continue
            elif retried:
                # Its restart failed before and it runs its previous options: restarting it
                # again on every reload would cut its sessions each time for nothing.
                report.unchanged.append(key)
            else:
                await self._restart(section, running, report)
        return report

    async def _reconfigure(
        self, section: Section, running: Component[Any], report: ReconcileReport
    ) -> bool:
        """Apply the change in place; True when done with (applied, or refused and the
        component left running as it was), False when it needs a restart."""
        if type(running.model) is not type(section.model):
            return False
        try:
            outcome = await running.reconfigure(section.model)
        except Exception as error:
            # The change cannot apply; the component keeps its previous options, and the
            # next reload tries again (its model still differs from the section's).
            reason = str(error) or type(error).__name__
            report.failed.append((section.key, reason))
            running.emit("20158", reason=reason, **self._fields(section.kind, running))
            return True
        if outcome is Reconfigured.APPLIED:
            report.reconfigured.append(section.key)
            return True
        return False

    async def _restart(
        self,
        section: Section,
        running: Component[Any],
        report: ReconcileReport,
    ) -> None:
        model = section.model
        assert isinstance(model, ComponentModel)
        changed = changed_options(running.model, model)
        await self._stop(section.key, 0.0)
        if await self._start(section, report, quiet=True):
            report.started.remove(section.key)
            report.restarted.append(section.key)
            self.bus.emit(
                "20012",
                kind=section.kind,
                type=model.type,
                name=model.name or section.uuid,
                options=", ".join(changed),
            )
        else:
            # Keep what ran before running rather than nothing at all.
            await self._start(dataclasses.replace(section, model=running.model), ReconcileReport())

    def referenced_files(self, configuration: Configuration) -> dict[Key, list[Path]]:
        """Per component that should run here, the files it reads besides server.ini."""
        found: dict[Key, list[Path]] = {}
        for section in configuration.components_here():
            model = section.model
            assert isinstance(model, ComponentModel)
            files = component_class(section).referenced_files(model, configuration)
            if files:
                found[section.key] = files
        return found

    async def refresh(self, key: Key, files: list[Path]) -> None:
        """A file the component reads changed: apply it as a change of its section."""
        running = self.components.get(key)
        section = self.configuration.sections.get(key) if self.configuration else None
        if running is None or section is None:
            return
        report = ReconcileReport()
        if await self._reconfigure(section, running, report):
            if not report.failed:
                running.emit(
                    "20267", files=", ".join(str(f) for f in files), **self._fields(key[0], running)
                )
            return
        await self._restart(section, running, report)

    async def reopen(self) -> None:
        for component in self.components.values():
            await component.reopen()

    def of_kind(self, kind: str) -> list[Component[Any]]:
        return [c for (k, _), c in self.components.items() if k == kind]

    async def stop_services(self) -> None:
        """Close every service, together: what a finished drain does before the rest stops."""
        await asyncio.gather(*(self._stop(k, 0.0) for k in self.components if k[0] == "services"))

    async def stop_all(self, drain_timeout: float) -> None:
        """Services first, event handlers last, so the handlers record every stop."""
        order = {kind: index for index, kind in enumerate(COMPONENT_KINDS)}
        for key in sorted(self.components, key=lambda k: order[k[0]], reverse=True):
            await self._stop(key, drain_timeout)

    @staticmethod
    def _fields(kind: str, component: Component[Any]) -> dict[str, Any]:
        """What the component events (20156-20159) say about the component."""
        return {
            "kind": kind,
            "type": component.model.type,
            "name": component.ref.name,
            "family": kind,
        }

    def _not_placed(self, section: Section, model: ComponentModel, new: Configuration) -> None:
        self.bus.emit(
            "20253",
            kind=section.kind,
            type=model.type,
            name=model.name or section.uuid,
            node_name=new.node_name,
            cluster_activation=", ".join(model.cluster_activation),
        )

    async def _start(self, section: Section, report: ReconcileReport, quiet: bool = False) -> bool:
        model = section.model
        assert isinstance(model, ComponentModel)
        context = ComponentContext(
            self.bus, section.kind, section.uuid, self.current, self.find, self.guard
        )
        component = component_class(section)(model, context)
        fields = self._fields(section.kind, component)
        try:
            await component.start()
        except Exception as error:
            reason = str(error) or type(error).__name__
            report.failed.append((section.key, reason))
            self.failures[section.key] = f"failed to start: {reason}"
            component.emit("20158", reason=reason, **fields)
            return False
        self.failures.pop(section.key, None)
        self.components[section.key] = component
        report.started.append(section.key)
        if not quiet:
            component.emit("20156", **fields)
        return True

    async def _stop(self, key: Key, drain_timeout: float) -> None:
        component = self.components.pop(key)
        fields = self._fields(key[0], component)
        try:
            await component.stop(drain_timeout)
        except Exception as error:
            component.emit("20159", reason=str(error) or type(error).__name__, **fields)
            return
        component.emit("20157", **fields)
