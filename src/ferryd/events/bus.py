"""The one event bus: every component emits here, every handler subscribes here.

Emitting never blocks and never fails the emitter: each subscription has its own bounded
queue, and an event that finds it full is dropped and counted; the count is reported as
event 20252 once the handler has caught up. Events emitted while the server is still starting
are kept (up to a bound) and replayed to every handler that subscribes before start-up ends,
so the first log file holds the start-up events too (SFTPPlus delivers those to one handler
only).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from ferryd.events.catalogue import definition
from ferryd.events.event import AccountRef, ComponentRef, Event, ServerRef, render_message
from ferryd.events.filters import EventFilter

STARTUP_BACKLOG_LIMIT = 10_000


class Subscription:
    """A handler's view of the bus: a bounded queue of the events its filter admits."""

    def __init__(self, bus: EventBus, name: str, event_filter: EventFilter, capacity: int) -> None:
        self.name = name
        self.filter = event_filter
        self.capacity = capacity
        self.dropped = 0
        self.dropped_total = 0
        self._bus = bus
        self._queue: asyncio.Queue[Event] = asyncio.Queue(capacity)

    def offer(self, event: Event) -> None:
        if not self.filter.matches(event):
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            self.dropped_total += 1

    async def get_batch(self, limit: int = 500) -> list[Event]:
        """Wait for at least one event, then take whatever else is queued, up to ``limit``."""
        batch = [await self._queue.get()]
        while len(batch) < limit and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        self._report_drops()
        return batch

    def pending(self) -> int:
        return self._queue.qsize()

    def _report_drops(self) -> None:
        if self.dropped and self._queue.qsize() <= self.capacity // 2:
            count, self.dropped = self.dropped, 0
            self._bus.emit("20252", name=self.name, count=count, capacity=self.capacity)


class EventBus:
    def __init__(self, server: ServerRef) -> None:
        self.server = server
        self.counts: Counter[str] = Counter()
        self._subscriptions: list[Subscription] = []
        self._backlog: list[Event] | None = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._taps: list[Callable[[Event], None]] = []

    def bind_loop(self) -> None:
        """Remember the running loop so that emits from worker threads are handed over to it."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    def subscribe(
        self, name: str, event_filter: EventFilter, capacity: int = 10_000
    ) -> Subscription:
        subscription = Subscription(self, name, event_filter, capacity)
        self._subscriptions.append(subscription)
        for event in self._backlog or ():
            subscription.offer(event)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    def end_startup(self) -> None:
        """Stop keeping events for handlers that have not subscribed yet."""
        self._backlog = None

    def tap(self, callback: Callable[[Event], None]) -> None:
        """Call ``callback`` synchronously for every event (tests and the CLI's failure report)."""
        self._taps.append(callback)

    def emit(
        self,
        event_id: str,
        /,
        *,
        component: ComponentRef | None = None,
        account: AccountRef | None = None,
        **data: Any,
    ) -> Event:
        spec = definition(event_id)
        event = Event(
            id=event_id,
            groups=spec.groups,
            message=render_message(spec, data),
            server=self.server,
            data=data,
            component=component,
            account=account,
        )
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(self._deliver, event)
        else:
            self._deliver(event)
        return event

    def _deliver(self, event: Event) -> None:
        self.counts[event.id] += 1
        if self._backlog is not None and len(self._backlog) < STARTUP_BACKLOG_LIMIT:
            self._backlog.append(event)
        for tap in self._taps:
            tap(event)
        for subscription in self._subscriptions:
            subscription.offer(event)
