"""The one lifecycle every component follows: services, authentication methods, handlers.

A component is built from its section's model and a :class:`ComponentContext`, and never
imports the supervisor: whatever it needs from the node comes through the context.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from ferryd.auth.policy import SecurityGuard
from ferryd.config.configuration import Configuration, Section
from ferryd.config.models import ComponentModel
from ferryd.config.problems import Problem
from ferryd.events.bus import EventBus
from ferryd.events.event import AccountRef, ComponentRef, Event

ModelT = TypeVar("ModelT", bound=ComponentModel)


class Reconfigured(enum.Enum):
    APPLIED = "applied"
    NEEDS_RESTART = "needs-restart"


class State(enum.Enum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Readiness:
    """A component's part of ``/health/ready``: can it serve clients now, and why not."""

    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    state: State
    detail: str = ""


def _nothing_running(key: tuple[str, str]) -> Component[Any] | None:
    return None


@dataclass(frozen=True, slots=True)
class ComponentContext:
    """What a component may use of its node; ``find`` looks up another running component
    by ``(kind, uuid)`` (a service finds its authentication methods this way)."""

    bus: EventBus
    kind: str
    uuid: str
    configuration: Callable[[], Configuration]
    find: Callable[[tuple[str, str]], Component[Any] | None] = _nothing_running
    guard: SecurityGuard | None = None  # bans and failure counts, shared through the coordinator


class Component(ABC, Generic[ModelT]):
    """Subclasses implement ``start`` and ``stop``; ``reconfigure`` defaults to a restart."""

    def __init__(self, model: ModelT, context: ComponentContext) -> None:
        self.model = model
        self.context = context
        self.state = State.STOPPED
        self.detail = ""

    @classmethod
    def preflight(cls, section: Section, configuration: Configuration) -> list[Problem]:
        """Problems that validation alone cannot see (an unwritable folder, a missing key)."""
        return []

    @classmethod
    def referenced_files(cls, model: ModelT, configuration: Configuration) -> list[Path]:
        """Files the component reads besides server.ini (keys, certificates): a change to
        one is applied like a change of the section (``reconfigure`` with the same model)."""
        return []

    @property
    def ref(self) -> ComponentRef:
        return ComponentRef(
            uuid=self.context.uuid,
            type=self.model.type,
            name=self.model.name or self.context.uuid,
            kind=self.context.kind,
        )

    @property
    def configuration(self) -> Configuration:
        return self.context.configuration()

    def emit(self, event_id: str, /, *, account: AccountRef | None = None, **data: Any) -> Event:
        return self.context.bus.emit(event_id, component=self.ref, account=account, **data)

    @abstractmethod
    async def start(self) -> None:
        """Raise to report a failure to start; the supervisor turns it into event 20158."""

    @abstractmethod
    async def stop(self, drain_timeout: float) -> None:
        """Stop accepting new work, let current work finish for up to ``drain_timeout``."""

    async def reconfigure(self, model: ModelT) -> Reconfigured:
        return Reconfigured.NEEDS_RESTART

    async def reopen(self) -> None:
        """Reopen external resources (log files after rotation); SIGHUP calls it."""

    async def readiness(self) -> Readiness | None:
        """This component's check in ``/health/ready``; None: not part of readiness."""
        return None

    async def stop_accepting(self) -> None:
        """Draining: take no new clients; the ones already here carry on."""

    def busy(self) -> int:
        """Client sessions open now (what a drain waits for)."""
        return 0

    def status(self) -> ComponentStatus:
        return ComponentStatus(self.state, self.detail)
