"""ferryd nodes sharing one configuration folder and one storage folder.

The integration helpers (``Ferryd``, ``ServeProcess``, ``ConfigFolder``, ``LogFile``) start
and watch each ``ferryd serve``; what is added here is the cluster around them: the
guide's ``server.ini`` and override files with test ports and paths, one ``--node-name``
and one ``{host.name}`` log per node, the health endpoints, and which node served a client.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
from hakit import doc_block
from tests.integration.conftest import (
    READY_EVENT,
    ConfigFolder,
    Ferryd,
    LogFile,
    ServeProcess,
    ferryd_command,
)
from tests.integration.polling import wait_for
from tests.integration.sshkit import LENIENT_POLICY, replace_atomically

HOST_KEY = asyncssh.generate_private_key("ssh-ed25519")  # every node shows clients the same
GUIDE_STORAGE = "/srv/ferryd/files"
NEW_CONNECTION = "30014"
CONFIGURATION_REFUSED = "20010"
DRAINING = "20263"
DRAIN_DEADLINE = "20264"
PROXY_REFUSED = "30077"
UPLOADED = "30068"
_GET = """
import sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as answer:
        print(answer.status, answer.read().decode() or "{}")
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode() or "{}")
except OSError:
    print(0, "{}")
"""


def lenient_policy() -> str:
    """No bans and no delay after a failed login: the tests poll logins that fail until an
    edit applies. Not part of the guide: a production policy stays as it is."""
    return "\n[security-policies/DEFAULT-SECURITY-POLICY]\n" + "\n".join(
        line.strip() for line in LENIENT_POLICY.strip().splitlines()
    )


def shared_ini(block: str, storage: Path, accounts: str, replace: Mapping[str, str]) -> str:
    """The guide's ``server.ini`` block for this test, then the test's policy and accounts."""
    text = doc_block(block, {GUIDE_STORAGE: str(storage), **replace})
    return text + lenient_policy() + "\n\n" + accounts


@dataclass
class Node:
    """One ``ferryd serve --node-name NAME [--override FILE]`` on the shared folder."""

    name: str
    config: ConfigFolder
    runner: Ferryd
    ssh_port: int
    health_port: int
    override: Path | None = None
    health_address: str = "127.0.0.1"
    namespace_prefix: list[str] = field(default_factory=list)  # ip netns exec NS
    process: ServeProcess | None = None
    started: list[ServeProcess] = field(default_factory=list)

    @property
    def log(self) -> LogFile:
        return self.config.log(f"log/{self.name}.log")

    def serve(self) -> ServeProcess:
        """Start it without waiting (several nodes start side by side)."""
        args = ["--node-name", self.name]
        if self.override is not None:
            args += ["--override", str(self.override)]
        self.process = self.runner.serve(self.config, *args)
        self.started.append(self.process)
        return self.process

    def wait_started(self) -> None:
        """Until this run of the node logged its start-up event (20181)."""
        assert self.process is not None
        self.process.wait_for_event(self.log, READY_EVENT, count=len(self.started))

    def readiness(self, path: str = "/health/ready") -> tuple[int, dict[str, Any]]:
        """Status code and JSON body of a health endpoint; (0, {}) when nothing answers."""
        url = f"http://{self.health_address}:{self.health_port}{path}"
        if self.namespace_prefix:
            return self._readiness_in_namespace(url)
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return answer.status, json.loads(answer.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")
        except OSError:
            return 0, {}

    def _readiness_in_namespace(self, url: str) -> tuple[int, dict[str, Any]]:
        """The same request, made from inside the node's network namespace."""
        asked = subprocess.run(
            [*self.namespace_prefix, sys.executable, "-c", _GET, url],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        status, _, body = asked.stdout.partition(" ")
        return int(status or 0), json.loads(body or "{}")

    def wait_ready(self, timeout: float = 10.0) -> dict[str, Any]:
        assert self.process is not None

        def ready() -> dict[str, Any] | None:
            status, body = self.readiness()
            return body if status == 200 else None

        body = self.process.wait_until(ready, f"{self.name}'s readiness to answer 200", timeout)
        assert body is not None
        return body

    def connections(self) -> list[str]:
        """Its 30014 lines: ``New SSH connection from ADDRESS:PORT[ via LB:PORT (PROXY v2)].``"""
        return self.log.events(NEW_CONNECTION)

    def served_ports(self, client: str, skip: int = 0) -> set[int]:
        """Local ports of the connections from ``client`` this node logged, after its first
        ``skip`` connection lines (a port may be reused by a later connection)."""
        pattern = re.compile(rf"from {re.escape(client)}:(\d+)\b")
        lines = self.connections()[skip:]
        return {int(m.group(1)) for line in lines if (m := pattern.search(line))}

    def uploaded(self, name: str) -> bool:
        """Whether this node logged the upload of ``/name`` as complete (event 30068)."""
        return bool(self.log.events(UPLOADED, f" uploaded /{name}: "))


class Cluster:
    """Nodes on one configuration folder and one storage folder, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.config = ConfigFolder(root / "configuration")
        self.storage = root / "storage"
        self.storage.mkdir(parents=True, exist_ok=True)
        self.config.path.mkdir(parents=True, exist_ok=True)
        HOST_KEY.write_private_key(str(self.config.path / "ssh_host_ed25519_key"))
        self.nodes: dict[str, Node] = {}

    def add(
        self,
        name: str,
        *,
        ssh_port: int,
        health_port: int,
        override_text: str | None = None,
        command_prefix: Iterable[str] = (),
    ) -> Node:
        folder = self.root / name
        runner = Ferryd(folder)
        runner.command = [*command_prefix, *ferryd_command()]
        override = None
        if override_text is not None:
            folder.mkdir(parents=True, exist_ok=True)
            override = folder / "node.ini"
            override.write_text(override_text, encoding="utf-8")
        node = Node(name, self.config, runner, ssh_port, health_port, override)
        node.namespace_prefix = list(command_prefix)
        self.nodes[name] = node
        return node

    def write(self, text: str) -> None:
        """Save server.ini as an editor does (a temporary file renamed over it)."""
        replace_atomically(self.config.ini, text)

    def start(self) -> None:
        """Start every node at once, as an orchestrator would (they create the shared state
        database together); wait until all are ready."""
        for node in self.nodes.values():
            node.serve()
        for node in self.nodes.values():
            node.wait_started()
            node.wait_ready()

    def home(self, user: str) -> Path:
        return self.storage / user

    def files(self, user: str) -> dict[str, bytes]:
        """What a client would see in ``user``'s home: every file but upload temporaries."""
        home = self.home(user)
        return {
            path.name: path.read_bytes()
            for path in sorted(home.iterdir())
            if path.is_file() and not path.name.startswith(".ferryd-upload.")
        }

    def marks(self) -> dict[str, int]:
        """How many connections each node has logged so far, for :meth:`served_by`."""
        return {name: len(node.connections()) for name, node in self.nodes.items()}

    def served_by(self, local_port: int, client: str, marks: dict[str, int]) -> str:
        """Which node logged the connection from ``client:local_port`` since ``marks``."""
        for name, node in self.nodes.items():
            if local_port in node.served_ports(client, marks.get(name, 0)):
                return name
        return ""

    def wait_served_by(
        self, local_port: int, client: str, marks: dict[str, int], timeout: float = 5.0
    ) -> str:
        return wait_for(
            lambda: self.served_by(local_port, client, marks),
            timeout=timeout,
            what=f"a node to log the connection from {client}:{local_port}",
        )

    def uploaded_by(self, name: str, timeout: float = 1.0) -> str:
        """Which node published the upload ``name`` ("" if none did). Handlers write an event
        a moment after it happens, so an upload that just ended gets ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            node = next((n for n, node in self.nodes.items() if node.uploaded(name)), "")
            if node or time.monotonic() > deadline:
                return node
            time.sleep(0.02)

    def stop(self) -> None:
        for node in self.nodes.values():
            node.runner.cleanup()
