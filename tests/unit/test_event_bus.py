"""The event bus: non-blocking emit, bounded queues with reported overflow, start-up replay."""

from __future__ import annotations

import asyncio
import threading

from ferryd.events.bus import EventBus
from ferryd.events.event import AccountRef, ComponentRef, Peer, ServerRef
from ferryd.events.filters import EventFilter

SERVER = ServerRef("server-uuid", "server", "node-1")


def test_emit_renders_the_catalogue_message_and_groups() -> None:
    bus = EventBus(SERVER)
    event = bus.emit("20175", source_path="/l/a.log", path="/l/a.log.1", size=10)
    assert event.message == "Log file /l/a.log rotated to /l/a.log.1 (10 bytes)."
    assert "success" in event.groups
    assert event.server == SERVER


async def test_full_queue_drops_counts_and_reports_once_caught_up() -> None:
    bus = EventBus(SERVER)
    bus.end_startup()
    slow = bus.subscribe("slow", EventFilter.everything(), capacity=4)
    for _ in range(10):
        bus.emit("20251", reason="x")
    assert slow.pending() == 4
    assert slow.dropped == 6
    first = slow.take(timeout=1)
    assert first is not None and [e.id for e in first] == ["20251"] * 4
    assert slow.dropped == 6, "reported only once the handler has delivered what it took"
    slow.done(len(first))
    reported = slow.take(timeout=1)
    assert reported is not None and [e.id for e in reported] == ["20252"]
    assert reported[0].data == {"name": "slow", "count": 6, "capacity": 4}
    assert slow.dropped == 0 and slow.dropped_total == 6


async def test_emitter_is_never_blocked_by_a_full_subscriber() -> None:
    bus = EventBus(SERVER)
    bus.end_startup()
    bus.subscribe("stuck", EventFilter.everything(), capacity=1)
    for _ in range(1000):
        bus.emit("20251", reason="x")
    assert bus.counts["20251"] == 1000


async def test_startup_events_are_replayed_to_handlers_that_subscribe_during_startup() -> None:
    bus = EventBus(SERVER)
    bus.emit("20001", product_version="1", node_name="n", config_path="/c")
    early = bus.subscribe("early", EventFilter.everything())
    bus.emit("20181", product_version="1", node_name="n", pid=1)
    later = bus.subscribe("later", EventFilter.everything())
    bus.end_startup()
    after = bus.subscribe("after", EventFilter.everything())
    assert [e.id for e in early.take(timeout=1) or []] == ["20001", "20181"]
    assert [e.id for e in later.take(timeout=1) or []] == ["20001", "20181"]
    assert after.pending() == 0


async def test_emit_from_a_worker_thread_is_delivered_on_the_loop() -> None:
    bus = EventBus(SERVER)
    bus.bind_loop()
    bus.end_startup()
    subscription = bus.subscribe("s", EventFilter.everything())
    thread = threading.Thread(target=bus.emit, args=("20251",), kwargs={"reason": "thread"})
    thread.start()
    thread.join()
    await asyncio.sleep(0)  # the loop delivers what the thread emitted
    batch = subscription.take(timeout=1)
    assert batch and batch[0].data["reason"] == "thread"


async def test_filter_decides_what_a_subscriber_receives() -> None:
    bus = EventBus(SERVER)
    bus.end_startup()
    failures = bus.subscribe("f", EventFilter.parse(groups=["failure"]))
    bus.emit("20251", reason="not a failure")
    bus.emit("20143", path="/x", reason="disk full")
    batch = failures.take(timeout=1)
    assert batch is not None and [e.id for e in batch] == ["20143"]


def test_account_and_component_are_carried() -> None:
    bus = EventBus(SERVER)
    account = AccountRef("acme", "a1", peer=Peer("192.0.2.7", 5000))
    component = ComponentRef("sftp-1", "ssh", "SFTP", "services")
    event = bus.emit("20251", account=account, component=component, reason="x")
    assert event.username == "acme"
    assert event.peer_address == "192.0.2.7"
    assert event.component == component
