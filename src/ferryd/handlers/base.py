"""What every event handler shares: subscription, batching, failure policy, draining.

Each handler consumes its own bounded queue on a thread of its own and receives events in
batches. Destinations block (a log file, perhaps on a network share; a pipe nobody reads),
so delivery runs where blocking holds up only that handler: the event loop's cost of an
event is a queue put, with no task to wake and no result to wait for. A slow destination
costs one write per batch rather than one per event, and never slows the component that
emitted the event.

A handler may wait :attr:`EventHandler.linger` seconds after each delivery before taking the
next batch, so events under load gather and go out together. The console lingers; the audit
file does not, so a line is written as soon as its event happens and a killed process loses
as little of the audit trail as possible.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from abc import abstractmethod
from typing import TypeVar

from ferryd.config.models import EventHandlerModel, changed_options
from ferryd.events.bus import Subscription
from ferryd.events.event import Event
from ferryd.events.filters import EventFilter
from ferryd.lifecycle import Component, Reconfigured, State

HandlerModelT = TypeVar("HandlerModelT", bound=EventHandlerModel)

QUEUE_CAPACITY = 10_000
#: seconds a stop waits, after the drain, for a write that has not returned
STUCK_GRACE = 2.0
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
    _thread: threading.Thread | None = None
    _failures = 0

    @abstractmethod
    async def open(self) -> None:
        """Acquire the destination (open a file...); raising makes the start fail."""

    @abstractmethod
    def handle(self, events: list[Event]) -> None:
        """Deliver one batch, on the handler's thread; raising counts one failure for the
        whole batch."""

    async def close(self) -> None:
        """Release the destination."""

    async def start(self) -> None:
        self.state = State.STARTING
        await self.open()
        subscription = self.context.bus.subscribe(
            f"{self.context.kind}/{self.context.uuid}", event_filter(self.model), QUEUE_CAPACITY
        )
        self._subscription = subscription
        self._failures = 0
        self._stopping = threading.Event()
        thread = threading.Thread(
            target=self._consume,
            args=(subscription, asyncio.get_running_loop()),
            name=f"handler {self.context.uuid}",
            daemon=True,
        )
        try:
            thread.start()
        except RuntimeError:  # no thread to be had: nothing of this start may stay behind
            self.context.bus.unsubscribe(subscription)
            self._subscription = None
            await self.close()
            raise
        self._thread = thread
        self.state = State.RUNNING

    async def stop(self, drain_timeout: float) -> None:
        """Deliver what is already queued or being written (up to the timeout), then close.

        A destination that does not return from a write (a pipe nobody reads, a hung
        network share) is left to its thread after :data:`STUCK_GRACE` more seconds: the
        handler is stopped, and the error says so (event 20159)."""
        self.state = State.STOPPING
        subscription, self._subscription = self._subscription, None
        thread, self._thread = self._thread, None
        if subscription is not None:
            self.context.bus.unsubscribe(subscription)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain_timeout):
                    while subscription.pending() and thread is not None and thread.is_alive():
                        await asyncio.sleep(0.01)
            self._stopping.set()  # what is still queued is given up
            subscription.close()
        if thread is not None:
            await asyncio.to_thread(thread.join, STUCK_GRACE)
            if thread.is_alive():
                # close() would wait for the stuck write too (the file's lock): skipped.
                self.state = State.STOPPED
                raise OSError(
                    f"its destination has not returned from a write for {STUCK_GRACE:g} s"
                    " after the drain; that write is left to finish on its own"
                )
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

    def _consume(self, subscription: Subscription, loop: asyncio.AbstractEventLoop) -> None:
        """The handler's thread: take, deliver, back off after a failure, linger."""
        stopping = self._stopping
        while not stopping.is_set():
            batch = subscription.take()
            if batch is None or stopping.is_set():
                return
            try:
                self.handle(batch)
            except Exception as error:
                subscription.done(len(batch))  # given up: stop() need not wait for it
                if not self._failed(batch, error, loop):
                    return
                stopping.wait(RETRY_DELAYS[min(self._failures, len(RETRY_DELAYS)) - 1])
                continue
            subscription.done(len(batch))
            self._failures = 0
            if self.linger:
                stopping.wait(self.linger)

    def _failed(
        self, batch: list[Event], error: Exception, loop: asyncio.AbstractEventLoop
    ) -> bool:
        """Report a failed delivery (on the handler's thread); tell whether to go on."""
        self._failures += 1
        reason = str(error) or type(error).__name__
        self.emit(
            "20174", name=self.ref.name, event_id=batch[0].id, count=len(batch), reason=reason
        )
        limit = self.model.fail_after_errors
        if limit and self._failures >= limit:
            loop.call_soon_threadsafe(self._give_up, reason, self._failures)
            return False
        return True

    def _give_up(self, reason: str, failures: int) -> None:
        """On the loop: too many failures in a row, the handler takes no more events."""
        if self.state is not State.RUNNING:
            return  # stopping anyway
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
            count=failures,
        )
