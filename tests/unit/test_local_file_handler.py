"""The local-file handler: lines, rotation events, failure policy and preflight."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ferryd.config.loader import load_configuration
from ferryd.events.bus import EventBus, Subscription
from ferryd.events.event import Event, ServerRef
from ferryd.handlers import local_file
from ferryd.handlers.local_file import LocalFileHandler
from ferryd.handlers.rotating_file import RotationEvent
from ferryd.lifecycle import ComponentContext, State
from ferryd.server import preflight

WriteIni = Callable[..., Path]


async def handler_for(
    write_ini: WriteIni,
    config_dir: Path,
    options: str,
    during_startup: Callable[[EventBus], None] | None = None,
) -> tuple[LocalFileHandler, EventBus, list[Event]]:
    """A started handler; what ``during_startup`` emits is queued before its first take."""
    write_ini("\n[event-handlers/log]\ntype = local-file\n" + options)
    configuration = load_configuration(config_dir, node="node-9")
    bus = EventBus(ServerRef("s", "s", "node-9"))
    bus.bind_loop()
    events: list[Event] = []
    bus.tap(events.append)
    if during_startup is not None:
        during_startup(bus)
    model = configuration.component_model(("event-handlers", "log"))
    assert model.type == "local-file"
    context = ComponentContext(bus, "event-handlers", "log", lambda: configuration)
    handler = LocalFileHandler(model, context)  # type: ignore[arg-type]
    await handler.start()
    bus.end_startup()
    return handler, bus, events


async def settle(handler: LocalFileHandler) -> None:
    async with asyncio.timeout(5):
        while handler._subscription is not None and handler._subscription.pending():
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)


async def test_path_uses_the_node_name_and_lines_use_entry_content(
    write_ini: WriteIni, config_dir: Path
) -> None:
    handler, bus, _ = await handler_for(
        write_ini, config_dir, "path = log/server-{host.name}.log\nentry_content = {id}|{message}\n"
    )
    bus.emit("20251", reason="test")
    await settle(handler)
    await handler.stop(1)
    text = (config_dir / "log" / "server-node-9.log").read_text()
    assert text == "20251|Configuration reload requested (test).\n"


async def test_size_rotation_is_reported_as_event_20175(
    write_ini: WriteIni, config_dir: Path
) -> None:
    handler, bus, events = await handler_for(
        write_ini,
        config_dir,
        "path = log/s.log\nentry_content = {id} {reason}\nrotate_at_size = 60\n",
    )
    for index in range(10):
        bus.emit("20251", reason=f"number {index}")
        await settle(handler)
    await handler.stop(1)
    rotated = [e for e in events if e.id == "20175"]
    assert rotated
    assert rotated[0].data["path"] == str(config_dir / "log" / "s.log.1")
    assert (config_dir / "log" / "s.log.1").exists()


async def test_write_failures_stop_the_handler_after_fail_after_errors(
    write_ini: WriteIni, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first delivery waits until the log folder is broken (after the handler opened its
    # file); both events were queued before the handler's first take.
    broken = threading.Event()
    deliver = LocalFileHandler.handle

    def held(self: LocalFileHandler, batch: list[Event]) -> None:
        broken.wait(5)
        deliver(self, batch)

    monkeypatch.setattr(LocalFileHandler, "handle", held)

    def two_events(bus: EventBus) -> None:
        for attempt in range(2):
            bus.emit("20251", reason=f"will fail {attempt}")

    handler, _, events = await handler_for(
        write_ini,
        config_dir,
        "path = log/s.log\nfail_after_errors = 2\nrotate_external = yes\n",
        two_events,
    )
    # Someone replaces the log folder by a file: the handler cannot reopen its log.
    (config_dir / "log").rename(config_dir / "old-log")
    (config_dir / "log").write_text("not a folder")
    broken.set()
    async with asyncio.timeout(5):
        while handler.state is not State.FAILED:
            await asyncio.sleep(0.01)
    assert [e.id for e in events if e.id in ("20174", "20066")] == ["20174", "20174", "20066"]
    failed = events[[e.id for e in events].index("20174")]
    assert "Not a directory" in failed.message
    # Both were queued before the handler's first take: one delivery of two lost events.
    assert "failed to handle 2 event(s) from 20251 on" in failed.message, failed.message
    await handler.stop(1)


async def test_stop_does_not_wait_out_the_back_off_after_a_failed_write(
    write_ini: WriteIni, config_dir: Path
) -> None:
    """A failing destination reports 20174 (to itself too, and fails again) and backs off;
    stopping then gives the failed batch up at once instead of waiting out the drain."""
    handler, bus, events = await handler_for(
        write_ini, config_dir, "path = log/s.log\nrotate_external = yes\n"
    )
    (config_dir / "log").rename(config_dir / "old-log")
    (config_dir / "log").write_text("not a folder")
    bus.emit("20251", reason="will fail")
    async with asyncio.timeout(5):
        while not [e for e in events if e.id == "20174"]:
            await asyncio.sleep(0.01)
    async with asyncio.timeout(1.0):
        await handler.stop(drain_timeout=10)
    assert handler.state is State.STOPPED


def test_preflight_reports_an_unwritable_log_folder_with_the_path_line(
    write_ini: WriteIni, config_dir: Path
) -> None:
    (config_dir / "not-a-folder").write_text("x")
    path = write_ini("\n[event-handlers/log]\ntype = local-file\npath = not-a-folder/x.log\n")
    configuration = load_configuration(config_dir)
    problems = [str(p) for p in preflight(configuration)]
    assert problems == [
        f"{path}:10: [event-handlers/log] path: cannot write the log file: "
        f"{config_dir / 'not-a-folder'} is not a folder"
    ]


async def test_sighup_reopen_follows_an_external_move(
    write_ini: WriteIni, config_dir: Path
) -> None:
    handler, bus, _ = await handler_for(
        write_ini, config_dir, "path = log/s.log\nentry_content = {id}\n"
    )
    bus.emit("20251", reason="before")
    await settle(handler)
    log = config_dir / "log" / "s.log"
    log.rename(config_dir / "log" / "s.log.old")
    await handler.reopen()
    bus.emit("20251", reason="after")
    await settle(handler)
    await handler.stop(1)
    assert (config_dir / "log" / "s.log.old").read_text() == "20251\n"
    assert log.read_text().splitlines() == ["20254", "20251"]


async def test_stop_delivers_every_event_already_queued(
    write_ini: WriteIni, config_dir: Path
) -> None:
    handler, bus, _ = await handler_for(
        write_ini, config_dir, "path = log/s.log\nentry_content = {id} {reason}\n"
    )
    for index in range(500):
        bus.emit("20251", reason=f"n{index}")
    await handler.stop(drain_timeout=5)
    lines = (config_dir / "log" / "s.log").read_text().splitlines()
    assert lines == [f"20251 n{index}" for index in range(500)]


async def test_stop_waits_for_the_batch_being_written(
    write_ini: WriteIni, config_dir: Path
) -> None:
    """An event taken from the queue but not yet written is not lost when the server stops
    (the queue is empty by then, but the line is still on its way to the file)."""
    handler, bus, _ = await handler_for(
        write_ini, config_dir, "path = log/s.log\nentry_content = {id} {reason}\n"
    )
    deliver = handler.handle

    def slow(events: list[Event]) -> None:
        time.sleep(0.2)  # a slow disk
        deliver(events)

    handler.handle = slow  # type: ignore[method-assign]
    bus.emit("20251", reason="last words")
    await asyncio.sleep(0.05)  # the handler has taken it and is writing it
    await handler.stop(drain_timeout=5)
    assert (config_dir / "log" / "s.log").read_text() == "20251 last words\n"


async def test_writing_entries_leaves_the_configuration_model_as_it_was(
    write_ini: WriteIni, config_dir: Path
) -> None:
    """Templates keep nothing of their rendering: the model a handler was configured with
    dumps (and compares) the same after entries were written as before."""
    handler, bus, _ = await handler_for(
        write_ini, config_dir, "path = log/s.log\nentry_content = {timestamp.iso_8601} {id}\n"
    )
    before = handler.model.model_dump_json()
    bus.emit("20251", reason="render once")
    await settle(handler)
    await handler.stop(1)
    assert handler.model.model_dump_json() == before


async def test_sighup_does_not_wait_for_a_stuck_write_and_reopens_once_it_returns(
    write_ini: WriteIni, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that does not return (a hung network share) holds the file: the SIGHUP
    reload goes on after REOPEN_WAIT, says why (20143), and the file is reopened, and that
    reported (20254), as soon as the write returns."""
    monkeypatch.setattr(local_file, "REOPEN_WAIT", 0.2)
    handler, bus, events = await handler_for(
        write_ini, config_dir, "path = log/s.log\nentry_content = {id}\n"
    )
    assert handler._file is not None
    release = threading.Event()
    write = handler._file._write

    def stuck(data: bytes) -> list[RotationEvent]:
        release.wait(10)
        return write(data)

    monkeypatch.setattr(handler._file, "_write", stuck)
    bus.emit("20251", reason="held")
    await asyncio.sleep(0.1)  # the handler's thread is inside the write
    log = config_dir / "log" / "s.log"
    log.rename(config_dir / "log" / "s.log.old")
    async with asyncio.timeout(3):
        await handler.reopen()
    late = [e for e in events if e.id == "20143"]
    assert late and "a write has not returned for 0.2 s" in late[0].message, late
    release.set()
    async with asyncio.timeout(5):
        while not (log.exists() and "20254" in log.read_text().split()):
            await asyncio.sleep(0.02)
    await handler.stop(1)
    assert (config_dir / "log" / "s.log.old").read_text().splitlines()[0] == "20251"


async def test_a_start_without_a_thread_leaves_no_queue_filling_and_no_file_open(
    write_ini: WriteIni, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process is out of threads: the start fails (the supervisor reports 20158) and
    leaves no subscription collecting events nobody takes, nor the log file open."""
    write_ini("\n[event-handlers/log]\ntype = local-file\npath = log/s.log\n")
    configuration = load_configuration(config_dir, node="node-9")
    bus = EventBus(ServerRef("s", "s", "node-9"))
    bus.bind_loop()
    bus.end_startup()
    model = configuration.component_model(("event-handlers", "log"))
    handler = LocalFileHandler(
        model,  # type: ignore[arg-type]
        ComponentContext(bus, "event-handlers", "log", lambda: configuration),
    )
    subscribed: list[Subscription] = []
    subscribe = bus.subscribe

    def recorded(*args: Any) -> Subscription:
        subscribed.append(subscribe(*args))
        return subscribed[-1]

    monkeypatch.setattr(bus, "subscribe", recorded)
    start = threading.Thread.start

    def no_handler_thread(self: threading.Thread) -> None:
        if self.name.startswith("handler "):
            raise RuntimeError("can't start new thread")
        start(self)

    monkeypatch.setattr(threading.Thread, "start", no_handler_thread)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        await handler.start()
    for _ in range(5):
        bus.emit("20251", reason="after the failed start")
    assert [s.pending() for s in subscribed] == [0]
    assert handler._file is None


async def test_a_sighup_reopen_that_fails_says_why_and_entries_wait_for_the_next_write(
    write_ini: WriteIni, config_dir: Path
) -> None:
    handler, bus, events = await handler_for(
        write_ini, config_dir, "path = log/s.log\nentry_content = {id}\n"
    )
    (config_dir / "log").rename(config_dir / "old-log")
    (config_dir / "log").write_text("not a folder")
    await handler.reopen()
    refused = [e for e in events if e.id == "20143"]
    assert refused and "cannot reopen: Not a directory" in refused[0].message, refused
    (config_dir / "log").unlink()
    (config_dir / "log").mkdir()
    bus.emit("20251", reason="written once the folder is back")
    await settle(handler)
    await handler.stop(1)
    assert "20251" in (config_dir / "log" / "s.log").read_text().split()
