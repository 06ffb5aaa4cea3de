"""Fixtures for integration tests that run the real ``ferryd`` command line as a subprocess.

Everything here is about driving the product from the outside, as an administrator would:
write a configuration folder, run ``ferryd check`` or ``ferryd serve``, send signals, and read
the log files the server writes. Waiting is always a poll with a deadline, never a bare sleep.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

if __package__:  # imported as tests.integration.conftest, as the end-to-end tests do
    from .polling import DEFAULT_TIMEOUT, wait_for
else:  # pytest's own import, with this folder on sys.path
    from polling import DEFAULT_TIMEOUT, wait_for

T = TypeVar("T")

MAIN_FILE = "server.ini"
OVERRIDE_FILE = "server.override.ini"
READY_EVENT = "20181"


def ferryd_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m ferryd.cli``."""
    script = Path(sys.executable).parent / "ferryd"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "ferryd.cli"]


def clean_environment(**extra: str) -> dict[str, str]:
    """The test's environment without a node name leaking in from the caller's shell."""
    env = {k: v for k, v in os.environ.items() if k != "FERRYD_NODE_NAME"}
    env.update(extra)
    return env


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based number of the line holding the ``occurrence``-th line containing ``needle``."""
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not found {occurrence} time(s) in:\n{text}")


def minimal_ini(
    log_path: str = "log/audit.log",
    *,
    handler: str = "audit",
    handler_options: str = "",
    extra: str = "",
) -> str:
    """A small valid server.ini: one ``local-file`` handler writing ``{id} {message}`` lines.

    Changes apply on SIGHUP only (``config_watch = no``): these tests send SIGHUP and wait for
    exactly the answer to it, which a reload of its own could otherwise have given already.
    """
    text = f"""\
        [server]
        name = integration
        config_watch = no

        [authentications/DEFAULT-AUTHENTICATION]
        type = application

        [event-handlers/{handler}]
        type = local-file
        path = {log_path}
        entry_content = {{id}} {{message}}
        """
    result = textwrap.dedent(text)
    if handler_options:
        result += textwrap.dedent(handler_options).strip() + "\n"
    if extra:
        result += "\n" + textwrap.dedent(extra).strip() + "\n"
    return result


def handler_section(name: str, log_path: str, options: str = "") -> str:
    """Another ``local-file`` handler section, to append to a server.ini."""
    text = f"""
[event-handlers/{name}]
type = local-file
path = {log_path}
entry_content = {{id}} {{message}}
"""
    if options:
        text += textwrap.dedent(options).strip() + "\n"
    return text


@dataclass
class LogFile:
    """A log file written by a ``local-file`` handler with ``entry_content = {id} {message}``."""

    path: Path

    def lines(self) -> list[str]:
        """Complete lines only: a line still being written is not returned."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        text = data.decode("utf-8", errors="replace")
        complete = text[: text.rfind("\n") + 1]
        return complete.splitlines()

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def events(self, event_id: str, containing: str = "") -> list[str]:
        """Lines of ``event_id`` (the first word of a line) that contain ``containing``."""
        return [
            line
            for line in self.lines()
            if line.split(" ", 1)[0] == event_id and containing in line
        ]

    def count(self, event_id: str, containing: str = "") -> int:
        return len(self.events(event_id, containing))


@dataclass
class ConfigFolder:
    """A configuration folder in tmp_path, written by the test."""

    path: Path

    @property
    def ini(self) -> Path:
        return self.path / MAIN_FILE

    @property
    def override(self) -> Path:
        return self.path / OVERRIDE_FILE

    def write(self, text: str) -> str:
        self.path.mkdir(parents=True, exist_ok=True)
        self.ini.write_text(text, encoding="utf-8")
        return text

    def write_override(self, text: str) -> str:
        self.path.mkdir(parents=True, exist_ok=True)
        self.override.write_text(text, encoding="utf-8")
        return text

    def log(self, relative: str = "log/audit.log") -> LogFile:
        return LogFile(self.path / relative)

    # The text builders, reachable from tests without importing this conftest module.
    minimal_ini = staticmethod(minimal_ini)
    handler_section = staticmethod(handler_section)
    line_of = staticmethod(line_of)


class ServeProcess:
    """A running ``ferryd serve`` with its standard streams captured in files."""

    def __init__(self, args: list[str], folder: Path, env: dict[str, str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.stdout_path = folder / "serve.stdout"
        self.stderr_path = folder / "serve.stderr"
        self.args = args
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env
            )

    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def diagnostics(self) -> str:
        return (
            f"command: {self.args}\nexit status: {self.process.poll()}\n"
            f"--- stdout ---\n{self.stdout()}\n--- stderr ---\n{self.stderr()}"
        )

    def is_running(self) -> bool:
        return self.process.poll() is None

    def send(self, sig: signal.Signals) -> None:
        assert self.is_running(), f"ferryd is not running\n{self.diagnostics()}"
        self.process.send_signal(sig)

    def hup(self) -> None:
        self.send(signal.SIGHUP)

    def wait_until(
        self, predicate: Callable[[], T], what: str, timeout: float = DEFAULT_TIMEOUT
    ) -> T:
        """Like :func:`wait_for`, but fails at once (with its output) if ferryd has exited."""

        def check() -> T:
            result = predicate()
            if not result and not self.is_running():
                raise AssertionError(
                    f"ferryd exited while waiting for {what}\n{self.diagnostics()}"
                )
            return result

        try:
            return wait_for(check, timeout=timeout, what=what)
        except AssertionError as error:
            if "timed out" in str(error):
                raise AssertionError(f"{error}\n{self.diagnostics()}") from None
            raise

    def wait_for_event(
        self, log: LogFile, event_id: str, containing: str = "", count: int = 1
    ) -> list[str]:
        """Wait until ``log`` holds at least ``count`` lines of ``event_id``; return them."""

        def found() -> list[str]:
            lines = log.events(event_id, containing)
            return lines if len(lines) >= count else []

        what = f"{count} x event {event_id} {containing!r} in {log.path}"
        return self.wait_until(found, what)

    def wait_exit(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"ferryd did not exit within {timeout} s\n{self.diagnostics()}"
            ) from None

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        self.send(sig)
        return self.wait_exit()

    def kill(self) -> None:
        """Teardown: make sure the process is gone, whatever state the test left it in."""
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=DEFAULT_TIMEOUT)


class Ferryd:
    """Runs the ``ferryd`` command line; every ``serve`` it starts is killed at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.command = ferryd_command()
        self.processes: list[ServeProcess] = []

    def run(
        self, *args: str | Path, env: dict[str, str] | None = None, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *(str(a) for a in args)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env if env is not None else clean_environment(),
            timeout=timeout,
            check=False,
        )

    def serve(
        self, config: ConfigFolder | Path, *args: str, env: dict[str, str] | None = None
    ) -> ServeProcess:
        """Start ``ferryd serve`` without waiting for anything."""
        folder = config.path if isinstance(config, ConfigFolder) else config
        command = [*self.command, "serve", "--config-dir", str(folder), *args]
        streams = self.tmp_path / f"serve-{len(self.processes)}"
        process = ServeProcess(command, streams, env if env is not None else clean_environment())
        self.processes.append(process)
        return process

    def start(
        self,
        config: ConfigFolder,
        *args: str,
        log: LogFile | None = None,
        env: dict[str, str] | None = None,
    ) -> ServeProcess:
        """Start ``ferryd serve`` and wait for its readiness event (20181) in ``log``."""
        process = self.serve(config, *args, env=env)
        process.wait_for_event(log or config.log(), READY_EVENT)
        return process

    environment = staticmethod(clean_environment)

    @staticmethod
    def output_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
        """Non-empty output lines of a command, stdout then stderr."""
        return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]

    def cleanup(self) -> None:
        for process in self.processes:
            process.kill()


@pytest.fixture
def ferryd(tmp_path: Path) -> Iterator[Ferryd]:
    runner = Ferryd(tmp_path)
    try:
        yield runner
    finally:
        runner.cleanup()


@pytest.fixture
def config(tmp_path: Path) -> ConfigFolder:
    """A configuration folder holding :func:`minimal_ini`, logging to ``log/audit.log``."""
    folder = ConfigFolder(tmp_path / "conf")
    folder.write(minimal_ini())
    return folder


@dataclass(frozen=True)
class Initialised:
    """A folder created by one ``ferryd init`` run, and what that run printed."""

    folder: Path
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Initialised:
    """One ``ferryd init`` per module (it generates an RSA 3072 key): treat it as read-only."""
    root = tmp_path_factory.mktemp("initialised")
    folder = root / "not" / "yet" / "there"
    result = Ferryd(root).run("init", "--config-dir", folder)
    return Initialised(folder, result)


class SharedServer:
    """One ``ferryd serve`` reused by many tests; each test gets it back running minimal_ini.

    Starting a process costs most of a second, so tests that only break the configuration and
    check that it is refused share one. :meth:`reset` restores the good configuration (or
    starts a new process if a previous test left it dead) before each of them.
    """

    def __init__(self, root: Path) -> None:
        self.ferryd = Ferryd(root)
        self.config = ConfigFolder(root / "conf")
        self.log = self.config.log()
        self.process: ServeProcess | None = None
        self.resets = 0

    def reset(self) -> ServeProcess:
        config = self.config
        if config.ini.is_dir():
            config.ini.rmdir()
        config.override.unlink(missing_ok=True)
        self.resets += 1
        # A new [server] description each time gives this reload its own 20250 to wait for.
        text = minimal_ini().replace("[server]\n", f"[server]\ndescription = reset {self.resets}\n")
        # Counted before writing: the server may apply the new file by itself, before SIGHUP.
        applied = self.log.count("20250")
        config.write(text)
        if self.process is None or not self.process.is_running():
            self.process = self.ferryd.start(config)
            return self.process
        self.process.hup()
        self.process.wait_for_event(self.log, "20250", count=applied + 1)
        return self.process

    def close(self) -> None:
        self.ferryd.cleanup()


@pytest.fixture(scope="module")
def _shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedServer]:
    shared = SharedServer(tmp_path_factory.mktemp("shared-server"))
    try:
        yield shared
    finally:
        shared.close()


@pytest.fixture
def shared_server(_shared_server: SharedServer) -> SharedServer:
    """A running ferryd on :func:`minimal_ini` (``config``, ``log``, ``process``), shared."""
    _shared_server.reset()
    return _shared_server


# -- bad input: one case per kind of mistake, shared by `check`, start-up and SIGHUP tests ----


@dataclass(frozen=True)
class Expected:
    """The one problem a bad configuration must be reported with."""

    path: Path
    line: int  # 0 when the problem concerns the whole file
    location: str  # "[section] option: " or the part of it that applies
    message: str  # a fragment of the message that must follow

    @property
    def prefix(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.location}"


@dataclass(frozen=True)
class BadInput:
    """A way of breaking the configuration of :func:`minimal_ini`, and how it is reported."""

    name: str
    apply: Callable[[ConfigFolder], Expected]

    def __str__(self) -> str:
        return self.name


def _write_main(
    config: ConfigFolder, text: str, needle: str, location: str, message: str
) -> Expected:
    config.write(text)
    return Expected(config.ini, line_of(text, needle), location, message)


def _syntax_error(config: ConfigFolder) -> Expected:
    text = minimal_ini(extra="[groups/partners]\nname = partners\nthis line has no delimiter")
    return _write_main(
        config,
        text,
        "this line has no delimiter",
        "",
        "expected 'name = value', a [section] header or a comment",
    )


def _unknown_section_kind(config: ConfigFolder) -> Expected:
    text = minimal_ini(extra="[widgets/w1]\nname = not a real kind")
    return _write_main(
        config, text, "[widgets/w1]", "[widgets/w1] ", "unknown section kind 'widgets'"
    )


def _non_boolean_boolean(config: ConfigFolder) -> Expected:
    text = minimal_ini(handler_options="enabled = maybe")
    return _write_main(
        config,
        text,
        "enabled = maybe",
        "[event-handlers/audit] enabled: ",
        "expected a boolean",
    )


def _account_without_name(config: ConfigFolder) -> Expected:
    text = minimal_ini(extra="[accounts/acme-uuid]\ndescription = has no name")
    return _write_main(
        config,
        text,
        "[accounts/acme-uuid]",
        "[accounts/acme-uuid] name: ",
        "missing required option",
    )


def _handler_without_type(config: ConfigFolder) -> Expected:
    text = minimal_ini(extra="[event-handlers/untyped]\npath = log/untyped.log")
    return _write_main(
        config,
        text,
        "[event-handlers/untyped]",
        "[event-handlers/untyped] type: ",
        "missing required option",
    )


def _unknown_variable_in_path(config: ConfigFolder) -> Expected:
    text = minimal_ini(log_path="log/{host.nmae}.log")
    return _write_main(
        config,
        text,
        "path = log/{host.nmae}.log",
        "[event-handlers/audit] path: ",
        "unknown variable {host.nmae}",
    )


def _unknown_variable_in_entry_content(config: ConfigFolder) -> Expected:
    text = minimal_ini().replace("entry_content = {id} {message}", "entry_content = {acount.name}")
    return _write_main(
        config,
        text,
        "entry_content = {acount.name}",
        "[event-handlers/audit] entry_content: ",
        "unknown variable {acount.name}",
    )


def _log_folder_is_a_file(config: ConfigFolder) -> Expected:
    # server.ini itself is a regular file, so nothing can be created "under" it, even by root.
    text = minimal_ini(log_path="server.ini/audit.log")
    return _write_main(
        config,
        text,
        "path = server.ini/audit.log",
        "[event-handlers/audit] path: ",
        "cannot write the log file",
    )


def _server_ini_is_a_folder(config: ConfigFolder) -> Expected:
    config.ini.unlink()
    config.ini.mkdir()
    return Expected(config.ini, 0, "", "cannot read")


def _server_ini_not_utf8(config: ConfigFolder) -> Expected:
    text = minimal_ini(extra="[groups/partners]\nname = partners\n# caf\udcff latin-1 comment")
    config.ini.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    return Expected(config.ini, line_of(text, "# caf"), "", "not valid UTF-8")


def _override_non_boolean(config: ConfigFolder) -> Expected:
    text = config.write_override("[event-handlers/audit]\nenabled = perhaps\n")
    return Expected(
        config.override,
        line_of(text, "enabled = perhaps"),
        "[event-handlers/audit] enabled: ",
        "expected a boolean",
    )


def _override_adds_bad_section(config: ConfigFolder) -> Expected:
    text = config.write_override(handler_section("extra", "log/{host.nmae}-extra.log").lstrip("\n"))
    return Expected(
        config.override,
        line_of(text, "path = "),
        "[event-handlers/extra] path: ",
        "unknown variable {host.nmae}",
    )


BAD_INPUTS = [
    BadInput("syntax-error", _syntax_error),
    BadInput("unknown-section-kind", _unknown_section_kind),
    BadInput("non-boolean-boolean", _non_boolean_boolean),
    BadInput("account-without-name", _account_without_name),
    BadInput("handler-without-type", _handler_without_type),
    BadInput("unknown-variable-in-path", _unknown_variable_in_path),
    BadInput("unknown-variable-in-entry-content", _unknown_variable_in_entry_content),
    BadInput("log-folder-under-a-regular-file", _log_folder_is_a_file),
    BadInput("server-ini-is-a-folder", _server_ini_is_a_folder),
    BadInput("server-ini-not-utf8", _server_ini_not_utf8),
    BadInput("override-non-boolean", _override_non_boolean),
    BadInput("override-adds-bad-section", _override_adds_bad_section),
]


@pytest.fixture(params=BAD_INPUTS, ids=str)
def bad_input(request: pytest.FixtureRequest) -> BadInput:
    """Each kind of configuration mistake in turn; apply it to a folder holding minimal_ini."""
    case: BadInput = request.param
    return case


@pytest.fixture
def ssh(tmp_path: Path, ferryd: Ferryd) -> object:
    """An :class:`sshkit.SshServer` in tmp_path (not started: call ``ssh.start(...)``)."""
    from sshkit import SshServer

    return SshServer(tmp_path / "ssh", ferryd, ConfigFolder(tmp_path / "ssh" / "conf"))


@pytest.fixture(scope="module")
def module_ssh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Any]]:
    """Makes ``sshkit.SshServer``s shared by a whole test module; all are stopped at its end."""
    from sshkit import SshServer

    runners: list[Ferryd] = []

    def make(name: str) -> SshServer:
        root = tmp_path_factory.mktemp(name)
        runner = Ferryd(root)
        runners.append(runner)
        return SshServer(root / "ssh", runner, ConfigFolder(root / "ssh" / "conf"))

    try:
        yield make
    finally:
        for runner in runners:
            runner.cleanup()
