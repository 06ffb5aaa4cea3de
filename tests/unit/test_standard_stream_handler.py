"""The standard-stream handler: filtered events on standard output, in entry_content form."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from ferryd.config.loader import load_configuration
from ferryd.events.bus import EventBus
from ferryd.events.event import Event, ServerRef
from ferryd.handlers import base
from ferryd.handlers.standard_stream import StandardStreamHandler
from ferryd.lifecycle import ComponentContext, State

WriteIni = Callable[..., Path]


def console(
    write_ini: WriteIni, config_dir: Path, options: str
) -> tuple[StandardStreamHandler, EventBus]:
    """A standard-stream handler with ``options`` on node-3, not started, and its bus."""
    write_ini("\n[event-handlers/console]\ntype = standard-stream\n" + options)
    configuration = load_configuration(config_dir, node="node-3")
    bus = EventBus(ServerRef("s", "s", "node-3"))
    bus.bind_loop()
    bus.end_startup()
    model = configuration.component_model(("event-handlers", "console"))
    context = ComponentContext(bus, "event-handlers", "console", lambda: configuration)
    handler = StandardStreamHandler(model, context)  # type: ignore[arg-type]
    return handler, bus


async def test_events_reach_stdout_filtered_and_formatted(
    write_ini: WriteIni, config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handler, bus = console(
        write_ini, config_dir, "target = !20251\nentry_content = [{host.name}] {id} {message}\n"
    )
    await handler.start()
    bus.emit("20251", reason="skipped by target")
    bus.emit("20143", path="/l/x.log", reason="disk full")
    await handler.stop(drain_timeout=5)
    await asyncio.sleep(0)
    assert (
        capsys.readouterr().out == "[node-3] 20143 Could not rotate log file /l/x.log: disk full\n"
    )


async def test_events_arriving_one_by_one_are_written_in_few_batches(
    write_ini: WriteIni, config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A session moving small files emits an event every millisecond or so; the console
    lingers between deliveries, so they are written in a few batches instead of one
    worker-thread hop each (200 events over at least 0.2 s: about 10 deliveries)."""
    handler, bus = console(write_ini, config_dir, "entry_content = {reason}\n")
    batches: list[int] = []
    deliver = handler.handle

    def counting(events: list[Event]) -> None:
        batches.append(len(events))
        deliver(events)

    handler.handle = counting  # type: ignore[method-assign]
    await handler.start()
    for index in range(200):
        bus.emit("20251", reason=f"n{index}")
        await asyncio.sleep(0.001)
    await handler.stop(drain_timeout=5)
    assert capsys.readouterr().out.splitlines() == [f"n{index}" for index in range(200)]
    assert len(batches) <= 40, batches


async def test_a_console_nobody_reads_holds_up_neither_the_loop_nor_the_emitters(
    write_ini: WriteIni, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Standard output piped to a process that stopped reading (a stuck log shipper): the
    console's writes block once the pipe is full, on the handler's own thread. Events keep
    being emitted and the event loop keeps running; once the reader catches up, every
    line is there, in order."""
    read_end, write_end = os.pipe()
    stuck = os.fdopen(write_end, "w", encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", stuck)
    handler, bus = console(write_ini, config_dir, "entry_content = {reason}\n")
    await handler.start()
    lines = [f"{index:05d} " + "x" * 94 for index in range(2000)]  # 200 KB: beyond the pipe
    for line in lines:
        bus.emit("20251", reason=line)
        await asyncio.sleep(0)
    await asyncio.sleep(0.2)
    assert handler._subscription is not None and handler._subscription.pending() > 0, (
        "the pipe should be full and the handler waiting on it"
    )
    received = bytearray()

    def read_all() -> None:
        while chunk := os.read(read_end, 65536):
            received.extend(chunk)

    reader = threading.Thread(target=read_all)
    reader.start()
    await handler.stop(drain_timeout=10)
    stuck.close()
    reader.join(5)
    os.close(read_end)
    assert received.decode().splitlines() == lines


async def test_stopping_while_the_console_pipe_stays_full_ends_and_says_why(
    write_ini: WriteIni, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reload that removes the console, or a shutdown, must not wait for ever on a reader
    that never comes back: after the drain and a grace period the stop gives up on the
    write (the supervisor reports the error as 20159) and the handler counts as stopped."""
    monkeypatch.setattr(base, "STUCK_GRACE", 0.3)
    read_end, write_end = os.pipe()
    stuck = os.fdopen(write_end, "w", encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", stuck)
    handler, bus = console(write_ini, config_dir, "entry_content = {reason}\n")
    await handler.start()
    for index in range(2000):
        bus.emit("20251", reason=f"{index:05d} " + "x" * 94)
    await asyncio.sleep(0.2)
    with pytest.raises(OSError, match=r"has not returned from a write for 0\.3 s"):
        await handler.stop(drain_timeout=0.2)
    assert handler.state is State.STOPPED
    # The reader comes back: the stuck write finishes and the thread ends.
    drained = threading.Thread(
        target=lambda: [None for _ in iter(lambda: os.read(read_end, 65536), b"")]
    )
    drained.start()
    stuck.close()
    drained.join(5)
    os.close(read_end)
