"""The lifecycle of a method that holds nothing of its own (no connection, no file, no cache):
it reads what it needs from the configuration at each login, so any change applies live."""

from __future__ import annotations

from typing import TypeVar

from ferryd.config.models import ComponentModel
from ferryd.lifecycle import Component, Reconfigured, State

ModelT = TypeVar("ModelT", bound=ComponentModel)


class StatelessMethod(Component[ModelT]):
    async def start(self) -> None:
        self.state = State.RUNNING

    async def stop(self, drain_timeout: float) -> None:
        self.state = State.STOPPED

    async def reconfigure(self, model: ModelT) -> Reconfigured:
        self.model = model
        return Reconfigured.APPLIED
