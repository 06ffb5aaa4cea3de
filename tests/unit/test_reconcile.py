"""The supervisor's reconcile: touch only what changed, keep everything else running as it is."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from ferryd.config.configuration import Configuration
from ferryd.config.loader import load_configuration
from ferryd.events.bus import EventBus
from ferryd.events.event import Event, ServerRef
from ferryd.handlers.local_file import LocalFileHandler
from ferryd.lifecycle import State
from ferryd.server import ReconcileReport, Supervisor

WriteIni = Callable[..., Path]

HANDLERS = """
[event-handlers/a]
type = local-file
path = log/a.log
entry_content = A {id}

[event-handlers/b]
type = local-file
path = log/b.log
entry_content = B {id}
"""


def recorded(bus: EventBus) -> list[Event]:
    events: list[Event] = []
    bus.tap(events.append)
    return events


async def started(
    write_ini: WriteIni, config_dir: Path, text: str, node: str = "n1"
) -> tuple[Supervisor, Configuration]:
    write_ini(text)
    bus = EventBus(ServerRef("s", "s", node))
    bus.bind_loop()
    supervisor = Supervisor(bus)
    configuration = load_configuration(config_dir, node=node)
    await supervisor.apply(configuration)
    bus.end_startup()
    return supervisor, configuration


async def reapply(
    supervisor: Supervisor, write_ini: WriteIni, config_dir: Path, text: str
) -> ReconcileReport:
    """Rewrite server.ini and reconcile with it, as a SIGHUP would."""
    write_ini(text)
    return await supervisor.apply(load_configuration(config_dir, node="n1"))


async def wait_for_text(path: Path, text: str, timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not (path.exists() and text in path.read_text()):
            await asyncio.sleep(0.01)


async def test_adding_a_handler_starts_it_and_leaves_the_others_untouched(
    write_ini: WriteIni, config_dir: Path
) -> None:
    supervisor, _ = await started(write_ini, config_dir, HANDLERS)
    a = supervisor.find(("event-handlers", "a"))
    assert isinstance(a, LocalFileHandler)
    file_before = a._file
    report = await reapply(
        supervisor,
        write_ini,
        config_dir,
        HANDLERS + "\n[event-handlers/c]\ntype = local-file\npath = log/c.log\n",
    )
    assert report.started == [("event-handlers", "c")]
    assert ("event-handlers", "a") in report.unchanged
    assert supervisor.find(("event-handlers", "a")) is a
    assert a._file is file_before
    supervisor.bus.emit("20251", reason="after")
    await wait_for_text(config_dir / "log" / "c.log", "20251")
    await supervisor.stop_all(1)


async def test_removing_a_handler_stops_only_that_one(
    write_ini: WriteIni, config_dir: Path
) -> None:
    supervisor, _ = await started(write_ini, config_dir, HANDLERS)
    b = supervisor.find(("event-handlers", "b"))
    assert b is not None
    report = await reapply(
        supervisor, write_ini, config_dir, HANDLERS.split("[event-handlers/b]")[0]
    )
    assert report.stopped == [("event-handlers", "b")]
    assert b.state is State.STOPPED
    assert supervisor.find(("event-handlers", "b")) is None
    size = (config_dir / "log" / "b.log").stat().st_size
    supervisor.bus.emit("20251", reason="after removal")
    await wait_for_text(config_dir / "log" / "a.log", "A 20251")
    assert (config_dir / "log" / "b.log").stat().st_size == size
    await supervisor.stop_all(1)


async def test_changing_entry_content_applies_in_place_on_the_same_open_file(
    write_ini: WriteIni, config_dir: Path
) -> None:
    supervisor, _ = await started(write_ini, config_dir, HANDLERS)
    a = supervisor.find(("event-handlers", "a"))
    assert isinstance(a, LocalFileHandler)
    file_before = a._file
    report = await reapply(
        supervisor,
        write_ini,
        config_dir,
        HANDLERS.replace("entry_content = A {id}", "entry_content = NEW {id}"),
    )
    assert report.reconfigured == [("event-handlers", "a")]
    assert supervisor.find(("event-handlers", "a")) is a
    assert a._file is file_before
    supervisor.bus.emit("20251", reason="x")
    await wait_for_text(config_dir / "log" / "a.log", "NEW 20251")
    await supervisor.stop_all(1)


async def test_changing_the_path_restarts_only_that_handler(
    write_ini: WriteIni, config_dir: Path
) -> None:
    supervisor, _ = await started(write_ini, config_dir, HANDLERS)
    events = recorded(supervisor.bus)
    a = supervisor.find(("event-handlers", "a"))
    b = supervisor.find(("event-handlers", "b"))
    report = await reapply(
        supervisor, write_ini, config_dir, HANDLERS.replace("path = log/a.log", "path = log/a2.log")
    )
    assert report.restarted == [("event-handlers", "a")]
    assert supervisor.find(("event-handlers", "a")) is not a
    assert supervisor.find(("event-handlers", "b")) is b
    restart = [e for e in events if e.id == "20012"]
    assert restart and restart[0].data["options"] == "path"
    await wait_for_text(config_dir / "log" / "a2.log", "20012")
    await supervisor.stop_all(1)


async def test_enabled_no_stops_and_yes_starts_again(write_ini: WriteIni, config_dir: Path) -> None:
    supervisor, _ = await started(write_ini, config_dir, HANDLERS)
    disabled = HANDLERS.replace("path = log/b.log", "path = log/b.log\nenabled = no")
    report = await reapply(supervisor, write_ini, config_dir, disabled)
    assert report.stopped == [("event-handlers", "b")]
    report = await reapply(supervisor, write_ini, config_dir, HANDLERS)
    assert report.started == [("event-handlers", "b")]
    await supervisor.stop_all(1)


async def test_component_placed_on_other_nodes_is_not_started(
    write_ini: WriteIni, config_dir: Path
) -> None:
    text = HANDLERS.replace("path = log/b.log", "path = log/b.log\ncluster_activation = n2, n3")
    supervisor, _ = await started(write_ini, config_dir, text, node="n1")
    assert supervisor.find(("event-handlers", "b")) is None
    assert supervisor.bus.counts["20253"] == 1
    await supervisor.stop_all(1)
    other, _ = await started(write_ini, config_dir, text, node="n2")
    assert other.find(("event-handlers", "b")) is not None
    await other.stop_all(1)


async def test_a_handler_that_cannot_start_does_not_stop_the_others(
    write_ini: WriteIni, config_dir: Path
) -> None:
    supervisor, _ = await started(write_ini, config_dir, HANDLERS)
    events = recorded(supervisor.bus)
    (config_dir / "blocker").write_text("a file, not a folder")
    report = await reapply(
        supervisor,
        write_ini,
        config_dir,
        HANDLERS + "\n[event-handlers/c]\ntype = local-file\npath = blocker/c.log\n",
    )
    assert [key for key, _ in report.failed] == [("event-handlers", "c")]
    failure = [e for e in events if e.id == "20158"]
    assert failure and "cannot open log file" in failure[0].message
    assert supervisor.find(("event-handlers", "a")) is not None
    await supervisor.stop_all(1)


async def test_a_changed_handler_that_cannot_restart_keeps_running_with_its_old_options(
    write_ini: WriteIni, config_dir: Path
) -> None:
    supervisor, _ = await started(write_ini, config_dir, HANDLERS)
    events = recorded(supervisor.bus)
    (config_dir / "blocker").write_text("a file, not a folder")
    report = await reapply(
        supervisor,
        write_ini,
        config_dir,
        HANDLERS.replace("path = log/a.log", "path = blocker/a.log"),
    )
    assert [key for key, _ in report.failed] == [("event-handlers", "a")]
    assert [e.id for e in events if e.id in ("20158", "20156")] == ["20158", "20156"]
    supervisor.bus.emit("20251", reason="still logging")
    await wait_for_text(config_dir / "log" / "a.log", "A 20251")
    await supervisor.stop_all(1)


async def test_a_handler_kept_on_old_options_survives_later_reloads_of_other_sections(
    write_ini: WriteIni, config_dir: Path
) -> None:
    supervisor, _ = await started(write_ini, config_dir, HANDLERS)
    (config_dir / "blocker").write_text("a file, not a folder")
    broken = HANDLERS.replace("path = log/a.log", "path = blocker/a.log")
    await reapply(supervisor, write_ini, config_dir, broken)
    # Another edit, to b only: a must still run, on the options that worked.
    report = await reapply(
        supervisor, write_ini, config_dir, broken.replace("entry_content = B", "entry_content = BB")
    )
    assert [key for key, _ in report.failed] == [("event-handlers", "a")], "tried again"
    running = supervisor.find(("event-handlers", "a"))
    assert running is not None, "the handler was lost at the second reload"
    supervisor.bus.emit("20251", reason="still logging")
    await wait_for_text(config_dir / "log" / "a.log", "A 20251")
    await wait_for_text(config_dir / "log" / "b.log", "BB 20251")
    await supervisor.stop_all(1)
