"""What every event handler shares: subscription, batching, failure policy, draining.

Handlers consume their own bounded queue in one task and receive events in batches, so a
slow destination costs one write per batch rather than one per event, and never slows the
component that emitted the event.

A handler may wait :attr:`EventHandler.linger` seconds after each delivery before taking the
next batch: an event after a quiet spell is delivered at once, and under load events gather
and go out together instead of costing one worker-thread hop and one event-loop wake-up
each. The console lingers; the audit file does not, so a line is written as soon as its
event happens and a killed process loses as little of the audit trail as before.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import abstractmethod
from typing import TypeVar

from ferryd.config.models import EventHandlerModel, changed_options
from ferryd.events.bus import Subscription
from ferryd.events.event import Event
from ferryd.events.filters import EventFilter
from ferryd.lifecycle import Component, Reconfigured, State

HandlerModelT = TypeVar("HandlerModelT", bound=EventHandlerModel)

QUEUE_CAPACITY = 10_000
RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
FILTER_OPTIONS = ("target", "groups", "usernames", "components", "source_addresses")


def event_filter(model: EventHandlerModel) -> EventFilter:
    return EventFilter.parse(**{name: getattr(model, name) for name in FILTER_OPTIONS})


class EventHandler(Component[HandlerModelT]):
    #: options a running handler can take in place; any other change restarts it.
    live_options: frozenset[str] = frozenset(
        [*FILTER_OPTIONS, "name", "description", "fail_after_errors", "created", "changed"]
    )

    #: seconds between the end of one delivery and the next (0: each batch at once)
    linger = 0.0

    _subscription: Subscription | None = None
    _task: asyncio.Task[None] | None = None
    _failures = 0
    _delivering = False

    @abstractmethod
    async def open(self) -> None:
        """Acquire the destination (open a file...); raising makes the start fail."""

    @abstractmethod
    async def handle(self, events: list[Event]) -> None:
        """Deliver one batch; raising counts one failure for the whole batch."""

    async def close(self) -> None:
        """Release the destination."""

    async def start(self) -> None:
        self.state = State.STARTING
        await self.open()
        self._subscription = self.context.bus.subscribe(
            f"{self.context.kind}/{self.context.uuid}", event_filter(self.model), QUEUE_CAPACITY
        )
        self._failures = 0
        self._task = asyncio.create_task(
            self._consume(self._subscription), name=f"handler {self.context.uuid}"
        )
        self.state = State.RUNNING

    async def stop(self, drain_timeout: float) -> None:
        """Deliver what is already queued (up to the timeout), then close."""
        self.state = State.STOPPING
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            self.context.bus.unsubscribe(subscription)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain_timeout):
                    while (
                        (subscription.pending() or self._delivering)
                        and self._task
                        and not self._task.done()
                    ):
                        await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.close()
        self.state = State.STOPPED

    async def reconfigure(self, model: HandlerModelT) -> Reconfigured:
        changed = set(changed_options(self.model, model))
        if not changed <= self.live_options:
            return Reconfigured.NEEDS_RESTART
        self.model = model
        if self._subscription is not None:
            self._subscription.filter = event_filter(model)
        return Reconfigured.APPLIED

    async def _consume(self, subscription: Subscription) -> None:
        while True:
            batch = await subscription.get_batch()
            self._delivering = True  # stop() waits for this batch, it does not cancel it
            try:
                await self.handle(batch)
            except Exception as error:
                self._delivering = False  # the batch is given up: stop() need not sit out
                if not await self._failed(batch, error):  # the back-off that follows
                    return
            else:
                self._failures = 0
            finally:
                self._delivering = False
            if self.linger:
                await asyncio.sleep(self.linger)

    async def _failed(self, batch: list[Event], error: Exception) -> bool:
        """Report, back off, and tell whether to go on."""
        self._failures += 1
        reason = str(error) or type(error).__name__
        self.emit(
            "20174", name=self.ref.name, event_id=batch[0].id, count=len(batch), reason=reason
        )
        limit = self.model.fail_after_errors
        if limit and self._failures >= limit:
            self.state = State.FAILED
            self.detail = reason
            if self._subscription is not None:
                self.context.bus.unsubscribe(self._subscription)
                self._subscription = None
            self.emit(
                "20066",
                kind=self.context.kind,
                type=self.model.type,
                name=self.ref.name,
                count=self._failures,
            )
            return False
        await asyncio.sleep(RETRY_DELAYS[min(self._failures, len(RETRY_DELAYS)) - 1])
        return True
