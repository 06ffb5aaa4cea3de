"""Helpers for tests that drive ferryd's SSH service with real clients.

``SshServer`` writes a configuration folder with a host key, one SSH service on a free port
(``port = 0``; the real port is read from event 30076) and accounts given by the test, starts
``ferryd serve`` and offers the OpenSSH ``sftp``/``scp`` command lines and an asyncssh client,
waits for its events, and tells whether (and how soon) an account can log in.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh

from ferryd.auth.passwords import hash_password

if __package__:  # imported as tests.integration.sshkit, as the end-to-end tests do
    from .polling import async_wait_for
else:  # imported by the integration tests, with this folder on sys.path
    from polling import async_wait_for

if TYPE_CHECKING:  # conftest is pytest's to import; at run time the fixture hands these over
    from conftest import ConfigFolder, Ferryd, LogFile, ServeProcess

_HOST_KEY = asyncssh.generate_private_key("ssh-ed25519")
_CLIENT_KEY = asyncssh.generate_private_key("ssh-ed25519")
_OTHER_KEY = asyncssh.generate_private_key("ssh-ed25519")
PASSWORD = "correct horse battery staple"
_HASH = hash_password(PASSWORD)


def client_key() -> asyncssh.SSHKey:
    return _CLIENT_KEY


def other_key() -> asyncssh.SSHKey:
    """A key that no account authorizes."""
    return _OTHER_KEY


def public_line(key: asyncssh.SSHKey) -> str:
    return key.export_public_key().decode().strip()


def account_section(
    name: str,
    *,
    options: str = "",
    password: str | None = _HASH,
    key: asyncssh.SSHKey | None = _CLIENT_KEY,
) -> str:
    """An ``[accounts/NAME]`` section; by default it has the shared password hash and key."""
    lines = [f"[accounts/{name}]", f"name = {name}"]
    if password is not None:
        lines.append(f"password = {password}")
    if key is not None:
        lines.append(f"ssh_authorized_keys_content = {public_line(key)}")
    text = "\n".join(lines) + "\n"
    if options:
        text += textwrap.dedent(options).strip() + "\n"
    return text


LENIENT_POLICY = """
    source_ip_ban_after_count = 0
    failed_login_delay = 0
"""
_LISTENING = re.compile(r"30076 SSH service (?P<name>\S+) listening on \S+:(?P<port>\d+)\.")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def replace_atomically(path: Path, text: str) -> None:
    """Save ``path`` as editors and provisioning tools do: write a hidden temporary file
    beside it and rename it over (a new inode, never a half-written file)."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def listening_port(line: str) -> int:
    """The port of a 30076 line (``SSH service NAME listening on ADDRESS:PORT.``)."""
    found = _LISTENING.fullmatch(line)
    assert found, f"not a 30076 line: {line!r}"
    return int(found.group("port"))


@dataclass
class SshServer:
    """A configuration folder plus the running ``ferryd serve`` for it."""

    root: Path
    ferryd: Ferryd
    config: ConfigFolder
    homes: Path = field(init=False)
    process: ServeProcess | None = None
    port: int = 0
    # The log the helpers read; nodes sharing one folder each log to their own file, and
    # ``dataclasses.replace(server, log_file=..., process=None)`` gives a node its own view.
    log_file: str = "log/audit.log"

    def __post_init__(self) -> None:
        self.homes = self.root / "homes"
        self.homes.mkdir(parents=True, exist_ok=True)
        key_path = self.root / "conf" / "ssh_host_ed25519_key"
        key_path.parent.mkdir(parents=True, exist_ok=True)
        if not key_path.exists():  # another view of the same folder leaves the files alone
            _HOST_KEY.write_private_key(str(key_path))
        key_file = self.root / "client_key"
        if not key_file.exists():
            _CLIENT_KEY.write_private_key(str(key_file))
            key_file.chmod(0o600)
        self.client_key_file = key_file

    @property
    def log(self) -> LogFile:
        return self.config.log(self.log_file)

    def ini(
        self,
        *,
        accounts: str = "",
        service: str = "",
        group: str = "",
        extra: str = "",
        policy: str = LENIENT_POLICY,
    ) -> str:
        """A server.ini: audit log, application auth, one ssh service, DEFAULT_GROUP, accounts.

        ``service``, ``group`` and ``policy`` are option lines for those sections (the
        default policy never bans and answers failures at once, so tests that fail logins on
        purpose stay independent and fast; ban tests pass their own); ``extra`` is appended
        (more groups, handlers...).
        """
        text = textwrap.dedent(
            """\
            [server]
            name = ssh-tests
            ssh_server_keys = ssh_host_ed25519_key

            [authentications/DEFAULT-AUTHENTICATION]
            type = application

            [event-handlers/audit]
            type = local-file
            path = log/audit.log
            entry_content = {id} {message}

            [services/sftp]
            type = ssh
            address = 127.0.0.1
            port = 0
            """
        )
        text += textwrap.dedent(service).strip() + "\n" if service.strip() else ""
        text += textwrap.dedent(
            f"""
            [groups/DEFAULT_GROUP]
            home_folder_path = {self.homes}/${{USER}}
            create_home_folder = yes
            """
        )
        text += textwrap.dedent(group).strip() + "\n" if group.strip() else ""
        text += "\n[security-policies/DEFAULT-SECURITY-POLICY]\n"
        text += textwrap.dedent(policy).strip() + "\n" if policy.strip() else ""
        if accounts:
            text += "\n" + accounts
        if extra:
            text += "\n" + textwrap.dedent(extra).strip() + "\n"
        return text

    def write(self, **parts: str) -> str:
        return self.config.write(self.ini(**parts))

    def start(self, *args: str, **parts: str) -> ServeProcess:
        """Write the configuration (when parts are given) and start ferryd; learn its port.

        ``args`` are more ``ferryd serve`` options (``--node-name N``)."""
        if parts or not self.config.ini.exists():
            self.write(**parts)
        before = self.log.count("30076") if self.log.path.exists() else 0
        self.process = self.ferryd.start(self.config, *args, log=self.log)
        self.port = listening_port(self.wait_event("30076", count=before + 1))
        return self.process

    def reload(self, **parts: str) -> None:
        """Rewrite the configuration and SIGHUP; wait until it is applied (event 20250)."""
        assert self.process is not None
        applied = self.log.count("20250") + self.log.count("20010")
        self.write(**parts)
        self.process.hup()

        def done() -> bool:
            return self.log.count("20250") + self.log.count("20010") > applied

        self.process.wait_until(done, "the reload to be applied or refused")

    def home(self, name: str) -> Path:
        return self.homes / name

    # -- events -----------------------------------------------------------------------

    def wait_event(
        self, event_id: str, containing: str = "", count: int = 1, log: LogFile | None = None
    ) -> str:
        """Wait until the log (``log``, else this server's) holds ``count`` lines of
        ``event_id`` containing ``containing``; the last such line. Fails at once if ferryd
        exited."""
        assert self.process is not None, "ferryd is not started"
        return self.process.wait_for_event(log or self.log, event_id, containing, count)[-1]

    def service_port(self, name: str) -> int:
        """The port the SSH service ``name`` listens on, from its latest 30076 line."""
        return listening_port(self.wait_event("30076", f"SSH service {name} listening on "))

    # -- OpenSSH clients --------------------------------------------------------------

    def ssh_options(self) -> list[str]:
        """OpenSSH client options isolated from the machine: no ~/.ssh/config, no agent keys,
        no known_hosts; only the shared client key is offered."""
        return [
            "-F",
            "/dev/null",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=10",
            "-i",
            str(self.client_key_file),
        ]

    def sftp(
        self,
        user: str,
        commands: Sequence[str] | str,
        *options: str,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the OpenSSH ``sftp`` client in batch mode (``-b``) with extra ``options``
        (``-B 32768``...); a failing command stops it unless prefixed with ``-``."""
        batch = commands if isinstance(commands, str) else "\n".join(commands) + "\n"
        batch_file = self.root / "batch.txt"
        batch_file.write_text(batch)
        return subprocess.run(
            [
                "sftp",
                "-P",
                str(self.port),
                *self.ssh_options(),
                *options,
                "-b",
                str(batch_file),
                f"{user}@127.0.0.1",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def scp(
        self, *args: str, legacy: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run OpenSSH ``scp``; ``legacy`` (``-O``) speaks the SCP protocol instead of SFTP.

        Remote paths are written with :meth:`target`."""
        return subprocess.run(
            ["scp", *(["-O"] if legacy else []), "-P", str(self.port), *self.ssh_options(), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def target(self, user: str, path: str) -> str:
        return f"{user}@127.0.0.1:{path}"

    # -- Python client ----------------------------------------------------------------

    async def connect(
        self,
        user: str,
        *,
        password: str | None = None,
        key: asyncssh.SSHKey | None = None,
        port: int | None = None,
        source: str | None = None,
        **options: object,
    ) -> asyncssh.SSHClientConnection:
        """An asyncssh connection to ``port`` (else :attr:`port`), from the local address
        ``source`` if given; with neither password nor key, the shared client key. With a
        password and no key, only the password is offered."""
        keys = [key] if key is not None else ([] if password is not None else [_CLIENT_KEY])
        if source is not None:
            options["local_addr"] = (source, 0)
        return await asyncssh.connect(
            "127.0.0.1",
            port or self.port,
            username=user,
            password=password,
            client_keys=keys,
            known_hosts=None,
            preferred_auth="publickey,password" if keys else "password",
            **options,  # type: ignore[arg-type]
        )

    async def can_log_in(
        self, user: str, *, password: str = PASSWORD, port: int | None = None, **options: object
    ) -> bool:
        """True when the password login succeeds and an SFTP session works; False when the
        login is refused. Any other failure (no listener, a dropped connection) is raised."""
        try:
            async with (
                await self.connect(user, password=password, port=port, **options) as conn,
                conn.start_sftp_client() as sftp,
            ):
                await sftp.listdir(".")
        except asyncssh.PermissionDenied:
            return False
        return True

    async def seconds_until_login(self, user: str, limit: float, port: int | None = None) -> float:
        """Try password logins from now until one succeeds; the seconds that took. Fails the
        test when ``limit`` seconds pass first."""
        started = time.monotonic()
        await async_wait_for(
            lambda: self.can_log_in(user, port=port),
            timeout=limit,
            what=f"{user} to log in",
        )
        return time.monotonic() - started
