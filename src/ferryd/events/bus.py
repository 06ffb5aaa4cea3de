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
import queue
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from ferryd.events.catalogue import definition
from ferryd.events.event import AccountRef, ComponentRef, Event, ServerRef, render_message
from ferryd.events.filters import EventFilter

STARTUP_BACKLOG_LIMIT = 10_000


class Subscription:
    """A handler's view of the bus: a bounded queue of the events its filter admits.

    The bus offers on the event loop; the handler takes on a thread of its own. An event
    costs the loop a counter under a lock and a put, never a wake-up of the loop: handlers
    write to files and pipes, which block.
    """

    def __init__(self, bus: EventBus, name: str, event_filter: EventFilter, capacity: int) -> None:
        self.name = name
        self.filter = event_filter
        self.capacity = capacity
        self.dropped = 0
        self.dropped_total = 0
        self._bus = bus
        self._queue: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        # Offered and not yet done: queued, or taken and still being delivered.
        self._outstanding = 0
        self._lock = threading.Lock()

    def offer(self, event: Event) -> None:
        if not self.filter.matches(event):
            return
        with self._lock:
            if self._outstanding >= self.capacity:
                self.dropped += 1
                self.dropped_total += 1
                return
            self._outstanding += 1
        self._queue.put(event)

    def take(self, limit: int = 500, timeout: float | None = None) -> list[Event] | None:
        """Block for at least one event, then take whatever else is queued, up to ``limit``.

        An empty list when ``timeout`` passes first; None once the subscription is closed.
        Each batch taken must be followed by :meth:`done`.
        """
        try:
            first = self._queue.get(timeout=timeout)
        except queue.Empty:
            return []
        if first is None:
            return None
        batch = [first]
        while len(batch) < limit:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                break
            if event is None:
                self._queue.put(None)  # seen again by the next take
                break
            batch.append(event)
        return batch

    def done(self, count: int) -> None:
        """``count`` taken events are delivered (or given up); drops are reported once the
        handler has caught up with half its queue."""
        with self._lock:
            self._outstanding -= count
            report = self.dropped and self._outstanding <= self.capacity // 2
            if report:
                dropped, self.dropped = self.dropped, 0
        if report:
            self._bus.emit("20252", name=self.name, count=dropped, capacity=self.capacity)

    def pending(self) -> int:
        """Events offered and not yet done."""
        return self._outstanding

    def close(self) -> None:
        """Wake the consumer for good: its next take returns None once the queue is empty."""
        self._queue.put(None)


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
