"""The node process: load, start, reload when the configuration files change (or on SIGHUP),
drain and stop on SIGTERM/SIGINT.

Draining: readiness fails at once; after ``drain_grace_period`` (when a health listener lets
a load balancer notice) the services stop accepting; open sessions get until
``drain_timeout``; what is still open then is closed; then everything stops and the process
exits 0. A second signal skips whatever waiting is left.

A configuration that fails validation or preflight is refused: at start-up the process exits
with status 1 after printing one line per problem; while running, event 20010 names the file
and line, and the last good configuration keeps running untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ferryd import __version__
from ferryd.auth import hashing
from ferryd.auth.plain_passwords import hash_plain_passwords
from ferryd.auth.policy import SecurityGuard
from ferryd.cluster.embedded import EmbeddedCoordinator
from ferryd.config.configuration import Configuration
from ferryd.config.loader import MAIN_FILE, OVERRIDE_FILE, load_configuration, node_name
from ferryd.config.problems import ConfigurationError, Problem
from ferryd.config.watch import FileWatch, Stamp, file_stamp
from ferryd.events.bus import EventBus
from ferryd.events.event import ServerRef
from ferryd.health.endpoint import HealthEndpoint
from ferryd.ini import IniError, write_atomic
from ferryd.server import Key, ReconcileReport, Supervisor, preflight


@dataclass
class NodeOptions:
    config_dir: Path
    node_name: str | None = None
    overrides: Sequence[Path] = field(default_factory=tuple)


class Node:
    def __init__(self, options: NodeOptions) -> None:
        self.options = options
        name = node_name(options.node_name)
        self.bus = EventBus(ServerRef(uuid="single-server-uuid", name="", node=name))
        self.supervisor = Supervisor(self.bus)
        self.health = HealthEndpoint(
            self.bus,
            lambda: self.supervisor.configuration,
            lambda: self.supervisor.components,
            lambda: self.supervisor.failures,
        )
        self._pid_file: Path | None = None
        self._hurry = asyncio.Event()
        self.coordinator: EmbeddedCoordinator | None = None
        self._guard_task: asyncio.Task[None] | None = None
        self._watch: FileWatch | None = None
        self._config_stamps: tuple[Stamp | None, ...] = ()
        self._referenced: dict[Key, dict[Path, Stamp | None]] = {}
        # The referenced files' stamps when a reload they caused was refused: the same
        # broken file is not tried (and refused) again at every poll, only once it changes.
        self._refused_referenced: dict[Key, dict[Path, Stamp | None]] | None = None
        self._stopping = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._background: set[asyncio.Task[bool]] = set()
        self.stop_reason = "requested"

    def load(self) -> Configuration:
        """Read and check the configuration; raises ConfigurationError.

        The files' stamps are noted just before they are read (again after our own rewrite
        of plain-text passwords), so an edit landing during a reload is seen as a change by
        the next check, and a refused file is not read again until it changes."""
        self._config_stamps = self._stamps()
        configuration = self._read()
        hashed = hash_plain_passwords(configuration)
        if hashed or self._stamps() != self._config_stamps:
            # Our rewrite, or another node's (it hashed a password first): read it again.
            self._config_stamps = self._stamps()
            configuration = self._read()
            for entry in hashed:
                self.bus.emit(
                    "20197", account_name=entry.account_name, path=entry.path, line=entry.line
                )
        problems = preflight(configuration)
        if problems:
            raise ConfigurationError(problems)
        return configuration

    def _read(self) -> Configuration:
        return load_configuration(
            self.options.config_dir, node=self.options.node_name, overrides=self.options.overrides
        )

    def _identify(self, configuration: Configuration) -> None:
        self.bus.server = ServerRef(
            configuration.server.uuid, configuration.server.name, configuration.node_name
        )

    async def start(self) -> list[str]:
        """Apply the first configuration; returns failures (empty when everything started)."""
        self.bus.bind_loop()
        configuration = self.load()
        self._identify(configuration)
        os.umask(configuration.server.umask_value)
        await self._open_state(configuration)
        self.bus.emit(
            "20001",
            product_version=__version__,
            node_name=configuration.node_name,
            config_path=str(configuration.files[0]),
        )
        await self.health.apply(configuration, starting=True)
        await asyncio.to_thread(self._write_pid_file, configuration)
        await self._note_referenced(configuration)
        report = await self.supervisor.apply(configuration)
        self._applied(configuration, report)
        self.bus.end_startup()
        if not report.failed:
            self.bus.emit(
                "20181",
                product_version=__version__,
                node_name=configuration.node_name,
                pid=os.getpid(),
            )
        await self._follow(configuration)
        return [f"[{kind}/{uuid}] {reason}" for (kind, uuid), reason in report.failed]

    async def _follow(self, configuration: Configuration) -> None:
        """Watch the configuration files, or stop watching, as ``config_watch`` says."""
        server = configuration.server
        if not server.config_watch:
            if self._watch is not None:
                await self._watch.stop()
                self._watch = None
            return
        if self._watch is None:
            self._watch = FileWatch(
                self._config_files,
                self._config_maybe_changed,
                server.config_poll_interval,
                "configuration",
            )
            self._watch.start()
        else:
            await self._watch.set_poll_interval(server.config_poll_interval)
            self._watch.retarget()

    def _config_files(self) -> list[Path]:
        """What the watch looks at: the configuration files and every file they reference."""
        referenced = [path for stamps in self._referenced.values() for path in stamps]
        return self._main_files() + referenced

    def _main_files(self) -> list[Path]:
        """server.ini, server.override.ini (watched even before it exists) and --override files."""
        folder = self.options.config_dir.absolute()
        files = [folder / MAIN_FILE, folder / OVERRIDE_FILE]
        return files + [Path(p).absolute() for p in self.options.overrides]

    def _stamps(self) -> tuple[Stamp | None, ...]:
        return tuple(file_stamp(path) for path in self._main_files())

    async def _note_referenced(self, configuration: Configuration) -> None:
        """Stamps of referenced files, taken before the components read them (in a thread:
        host keys and CA files may be on the shared, network, folder)."""
        files = self.supervisor.referenced_files(configuration)
        self._referenced = await asyncio.to_thread(
            lambda: {key: _stamps_of(paths) for key, paths in files.items()}
        )

    async def _config_maybe_changed(self) -> None:
        """Reload when a configuration file, or a file it references, changed."""
        main, referenced = await asyncio.to_thread(self._all_stamps)
        moved = referenced != self._referenced and referenced != self._refused_referenced
        if main != self._config_stamps or moved:
            applied = await self.reload("configuration files changed", reopen=False)
            self._refused_referenced = None if applied else referenced

    def _all_stamps(self) -> tuple[tuple[Stamp | None, ...], dict[Key, dict[Path, Stamp | None]]]:
        referenced = {key: _stamps_of(list(stamps)) for key, stamps in self._referenced.items()}
        return self._stamps(), referenced

    async def _refresh(self, before: dict[Key, dict[Path, Stamp | None]], keys: list[Key]) -> None:
        """Apply changed referenced files to the running ``keys`` that did not restart."""
        for key in keys:
            now = self._referenced.get(key)
            if now is None or key not in before or before[key] == now:
                continue
            changed = [path for path, stamp in now.items() if before[key].get(path) != stamp]
            await self.supervisor.refresh(key, changed)

    async def _open_state(self, configuration: Configuration) -> None:
        """The coordinator and the ban guard every service shares (bans outlive restarts)."""
        path = configuration.resolve_path(configuration.server.state_database)
        coordinator = EmbeddedCoordinator(path)
        try:
            await coordinator.open()
        except Exception as error:
            await coordinator.close()
            where = str(configuration.files[0])
            problem = Problem(where, 0, f"cannot open {path}: {error}", "server", "state_database")
            raise ConfigurationError([problem]) from None
        self.coordinator = coordinator
        guard = SecurityGuard(coordinator, self.bus)
        await guard.refresh()
        self.supervisor.guard = guard
        self._guard_task = asyncio.ensure_future(guard.run())

    def _applied(self, configuration: Configuration, report: ReconcileReport) -> None:
        self.bus.emit(
            "20250",
            generation=self.supervisor.generation,
            path=str(configuration.files[0]),
            started=len(report.started),
            stopped=len(report.stopped),
            reconfigured=len(report.reconfigured) + len(report.restarted),
            unchanged=len(report.unchanged),
            failed=len(report.failed),
        )

    async def reload(self, reason: str, reopen: bool = True) -> bool:
        """Load and apply the configuration again; False (and event 20010) if it is refused.

        ``reopen`` (SIGHUP) first reopens log files, whatever becomes of the edit: log
        rotation tools send SIGHUP too, and what follows the signal (this reload, its refusal)
        belongs in the new file. A reload because files changed does not reopen."""
        if self._stopping.is_set():
            return False  # draining: nothing new may start
        async with self._reload_lock:
            if reopen:
                await self.supervisor.reopen()
            self.bus.emit("20251", reason=reason)
            try:
                configuration = await asyncio.to_thread(self.load)
            except ConfigurationError as error:
                self.refused(error.problems)
                return False
            except Exception as error:  # whatever failed, the running configuration stays
                where = str(self.options.config_dir.absolute() / MAIN_FILE)
                self.refused([Problem(where, 0, f"cannot load: {error}")])
                return False
            else:
                if self._stopping.is_set():
                    return False  # the drain began while this was loading
                self.health.last_refusal = ""
                before = self._referenced
                changed = configuration.fingerprint != self.supervisor.current().fingerprint
                if changed:
                    self._identify(configuration)
                await self._note_referenced(configuration)
                # Always reconciled, even unchanged: a component that failed to start or to
                # take a change is tried again (a freed port, a fixed key file).
                report = await self.supervisor.apply(configuration)
                if changed or report.changed:
                    self._applied(configuration, report)
                if changed:
                    await self.health.apply(configuration, starting=False)
                    await self._follow(configuration)
                # A key or CA file may have changed with no change to its section.
                await self._refresh(before, report.unchanged)
                return True

    def refused(self, problems: list[Problem]) -> None:
        first = problems[0]
        self.health.last_refusal = str(first)
        self.bus.emit(
            "20010",
            problem=str(first),
            path=first.path,
            line=first.line,
            section=first.section or "",
            option=first.option or "",
            location=first.location,
            reason=first.message,
            problems=[str(p) for p in problems],
        )

    def request_stop(self, reason: str) -> None:
        """The first request drains; another one while draining skips the waiting left."""
        if not self._stopping.is_set():
            self.stop_reason = reason
            self._stopping.set()
        else:
            self._hurry.set()

    def _reload_in_background(self, reason: str) -> None:
        # Keep a reference: the loop only holds weak ones, and a reload must not vanish.
        task = asyncio.ensure_future(self.reload(reason))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def run_until_stopped(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self.request_stop, "SIGINT")
        loop.add_signal_handler(signal.SIGHUP, self._reload_in_background, "SIGHUP")
        await self._stopping.wait()
        await self.shutdown(self.stop_reason)

    async def shutdown(self, reason: str) -> None:
        self._stopping.set()
        self.health.draining = True  # at once, even if a reload holds the lock a moment
        self.bus.emit("20002", reason=reason)
        if self._watch is not None:
            await self._watch.stop()
        async with self._reload_lock:  # a reload running now finishes first, or gives up
            configuration = self.supervisor.configuration
            drain = configuration.server.drain_timeout if configuration else 0.0
            if configuration is not None:
                await self._drain(configuration)
            await self.supervisor.stop_all(drain)
        await self.health.stop()
        if self._guard_task is not None:
            self._guard_task.cancel()
        if self.coordinator is not None:
            await self.coordinator.close()
        await hashing.close()
        self._remove_pid_file()

    async def _drain(self, configuration: Configuration) -> None:
        """Leave the load balancer (readiness already fails: see shutdown), stop taking
        clients, let the current ones finish."""
        server = configuration.server
        grace = server.drain_grace_period if self.health.listening else 0.0
        self.bus.emit(
            "20263",
            node_name=configuration.node_name,
            grace=f"{grace:g}",
            timeout=f"{server.drain_timeout:g}",
        )
        await self._wait_unless_hurried(grace)
        services = self.supervisor.of_kind("services")
        for service in services:
            await service.stop_accepting()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + server.drain_timeout
        while sum(s.busy() for s in services) and loop.time() < deadline:
            await self._wait_unless_hurried(0.05)
            if self._hurry.is_set():
                break
        left = sum(s.busy() for s in services)
        if left:
            self.bus.emit("20264", count=left)
        await self.supervisor.stop_services()

    async def _wait_unless_hurried(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), seconds)

    def _write_pid_file(self, configuration: Configuration) -> None:
        path = configuration.node_path(configuration.server.pid_file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, f"{os.getpid()}\n")
        except (OSError, IniError) as error:
            reason = getattr(error, "message", None) or getattr(error, "strerror", None)
            self.bus.emit("20266", path=str(path), reason=str(reason or error))
            return
        self._pid_file = path

    def _remove_pid_file(self) -> None:
        """Only if it still names this process: a new node may already have replaced it."""
        path, self._pid_file = self._pid_file, None
        if path is None:
            return
        with contextlib.suppress(OSError, ValueError):
            if int(path.read_text().strip()) == os.getpid():
                path.unlink()


def _stamps_of(paths: list[Path]) -> dict[Path, Stamp | None]:
    return {path: file_stamp(path) for path in paths}


def _quiet_libraries() -> None:
    """Everything a user should see goes through the event bus, not library loggers; above
    every level, asyncssh does not even build the records it would log for each request."""
    for name in ("asyncssh",):
        library = logging.getLogger(name)
        library.addHandler(logging.NullHandler())
        library.propagate = False
        library.setLevel(logging.CRITICAL + 1)


async def serve(options: NodeOptions) -> int:
    _quiet_libraries()
    node = Node(options)
    try:
        failures = await node.start()
    except ConfigurationError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return 1
    if failures:
        for failure in failures:
            print(f"ferryd could not start: {failure}", file=sys.stderr)
        node.bus.emit("20004", reason="; ".join(failures))
        await node.shutdown("start-up failure")
        return 1
    await node.run_until_stopped()
    return 0
