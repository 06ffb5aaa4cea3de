"""A private network in Linux network namespaces, for keepalived (VRRP) and a virtual address.

Topology (all of it inside namespaces; nothing touches the host's own interfaces)::

    ns BRIDGE: br0 ── pa ── eth0 of ns A (node-a, 10.0.0.11)
                   ── pb ── eth0 of ns B (node-b, 10.0.0.12)
                   ── pc ── eth0 of ns C (client, 10.0.0.50)
    the virtual address 10.0.0.100 moves between A and B (keepalived)

Each veth pair is created directly inside its two namespaces, so nothing is ever named in the
host's namespace. Namespace names carry the pid of the test process (``ferryd-e2e-PID-x``):
parallel runs do not collide, and namespaces left by a run that died (its pid is gone) are
removed with what still runs in them before a new lab is built. Teardown stops the processes
the lab started (by pid), then anything else left in its namespaces, then the namespaces;
deleting a namespace deletes its interfaces.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hakit import Daemon, pid_alive
from tests.integration.polling import wait_for

PREFIX = "ferryd-e2e-"
SUBNET_PREFIX = 24
NODE_ADDRESSES = {"a": "10.0.0.11", "b": "10.0.0.12", "c": "10.0.0.50"}
INTERFACE = "eth0"  # inside each node's namespace, so the guide's keepalived.conf needs no edit
_OURS = re.compile(rf"^{re.escape(PREFIX)}(?P<pid>\d+)-")


def available() -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "network namespaces and keepalived need root (CI runs the tests as root)"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    probe = f"{PREFIX}{os.getpid()}-probe"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` does not work here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def installed() -> str | None:
    """Why keepalived cannot run (it is missing), or None."""
    if shutil.which("keepalived") is None:
        return "keepalived is not installed (scripts/install-system-deps.sh installs it)"
    return None


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise AssertionError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def namespaces() -> list[str]:
    listing = ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in listing.splitlines() if line.strip()]


def pids_in(namespace: str) -> list[int]:
    listing = ip("netns", "pids", namespace, check=False).stdout
    return [int(word) for word in listing.split() if word.isdigit()]


def kill_all_in(namespace: str) -> None:
    """SIGKILL, one pid at a time, what still runs in one of our namespaces; wait until gone."""
    for pid in pids_in(namespace):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pids_in(namespace) and time.monotonic() < deadline:
        time.sleep(0.05)


def remove_leftovers() -> list[str]:
    """Delete the namespaces of earlier runs whose test process is gone; their names."""
    removed = []
    for namespace in namespaces():
        match = _OURS.match(namespace)
        if match is None or pid_alive(int(match.group("pid"))):
            continue
        kill_all_in(namespace)
        ip("netns", "del", namespace, check=False)
        removed.append(namespace)
    return removed


@dataclass
class NetnsLab:
    """The bridge, the node namespaces ``a`` and ``b`` and the client namespace ``c``."""

    root: Path
    tag: str = field(default_factory=lambda: f"{os.getpid()}")
    daemons: list[Daemon] = field(default_factory=list)
    created: list[str] = field(default_factory=list)

    def namespace(self, member: str) -> str:
        return f"{PREFIX}{self.tag}-{member}"

    @property
    def bridge(self) -> str:
        return self.namespace("br")

    def build(self) -> NetnsLab:
        remove_leftovers()
        for member in ("br", "a", "b", "c"):  # a rerun in the same process starts clean
            name = self.namespace(member)
            if name in namespaces():
                kill_all_in(name)
                ip("netns", "del", name, check=False)
        self._add(self.bridge)
        ip("-n", self.bridge, "link", "add", "br0", "type", "bridge")
        ip("-n", self.bridge, "link", "set", "br0", "up")
        for member, address in NODE_ADDRESSES.items():
            name = self._add(self.namespace(member))
            port = f"p{member}"
            peer = ["peer", "name", INTERFACE, "netns", name]  # created straight in its place
            ip("-n", self.bridge, "link", "add", port, "type", "veth", *peer)
            ip("-n", self.bridge, "link", "set", port, "master", "br0")
            ip("-n", self.bridge, "link", "set", port, "up")
            ip("-n", name, "addr", "add", f"{address}/{SUBNET_PREFIX}", "dev", INTERFACE)
            ip("-n", name, "link", "set", INTERFACE, "up")
        return self

    def _add(self, name: str) -> str:
        ip("netns", "add", name)
        self.created.append(name)
        ip("-n", name, "link", "set", "lo", "up")
        return name

    def exec_prefix(self, member: str) -> list[str]:
        """Prefix a command with this to run it in ``member``'s namespace (same pid: ``ip
        netns exec`` execs the command, so signals reach it directly)."""
        return ["ip", "netns", "exec", self.namespace(member)]

    def run(
        self, member: str, args: Sequence[str], *, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.exec_prefix(member), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, member: str, name: str, args: Sequence[str]) -> Daemon:
        daemon = Daemon(name, [*self.exec_prefix(member), *args], self.root / f"{name}.log")
        self.daemons.append(daemon)
        return daemon

    def addresses(self, member: str) -> list[str]:
        """The IPv4 addresses of ``member``'s eth0, without prefix length."""
        shown = ip("-n", self.namespace(member), "-4", "-o", "addr", "show", "dev", INTERFACE)
        return re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", shown.stdout)

    def holders(self, address: str) -> list[str]:
        """The node namespaces ("a", "b") that have ``address`` on their interface. After a
        crash of keepalived the dead node keeps the address while the other one takes it."""
        return [member for member in ("a", "b") if address in self.addresses(member)]

    def link_down(self, member: str) -> None:
        ip("-n", self.namespace(member), "link", "set", INTERFACE, "down")

    def teardown(self) -> None:
        for daemon in reversed(self.daemons):  # the namespaces go: no need to be gentle
            daemon.stop(signal.SIGKILL, timeout=3.0)
        for name in reversed(self.created):
            kill_all_in(name)
            ip("netns", "del", name, check=False)
        self.created.clear()


class Keepalived:
    """keepalived (VRRP only) in a node namespace, its pid files and log in ``root``."""

    def __init__(self, lab: NetnsLab, member: str, config_text: str) -> None:
        self.lab = lab
        self.member = member
        self.root = lab.root / f"keepalived-{member}"
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path = self.root / "keepalived.conf"
        self.config_path.write_text(config_text, encoding="utf-8")
        self.daemon: Daemon | None = None
        self.runs = 0

    @property
    def main_pid(self) -> Path:
        return self.root / f"main-{self.runs}.pid"

    @property
    def vrrp_pid(self) -> Path:
        return self.root / f"vrrp-{self.runs}.pid"

    def start(self) -> Keepalived:
        """Start it (again). Each run has its own log, so states are counted per run, and its
        own pid files: those of a killed run may name a process not yet reaped."""
        check = self.lab.run(self.member, ["keepalived", "-t", "-f", str(self.config_path)])
        assert check.returncode == 0, (
            f"keepalived refuses {self.config_path}:\n{check.stdout}{check.stderr}"
        )
        self.runs += 1
        args = ["keepalived", "-n", "-l", "-D", "-P", "-f", str(self.config_path)]
        args += ["-p", str(self.main_pid), "-r", str(self.vrrp_pid)]
        name = f"keepalived-{self.member}-{self.runs}"
        self.daemon = self.lab.start(self.member, name, args)
        return self

    def output(self) -> str:
        return self.daemon.output() if self.daemon is not None else ""

    def entered(self, state: str) -> int:
        """How many times the VRRP instance entered ``state`` (MASTER, BACKUP, FAULT)."""
        return self.output().count(f"Entering {state} STATE")

    def wait_entered(self, state: str, count: int = 1, timeout: float = 10.0) -> None:
        wait_for(
            lambda: self.entered(state) >= count,
            timeout=timeout,
            what=f"keepalived on {self.member} entering {state} ({count}x)\n{self.output()}",
        )

    def kill(self) -> None:
        """Crash it: SIGKILL the VRRP child and the parent, by the pids they wrote; wait until
        both are gone (a dead keepalived's pid files stay, as after a real crash)."""
        pids = []
        for path in (self.vrrp_pid, self.main_pid):
            with contextlib.suppress(FileNotFoundError, ValueError):
                pids.append(int(path.read_text().strip()))
        if self.daemon is not None:
            pids.append(self.daemon.pid)
        for pid in dict.fromkeys(pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.daemon is not None:
            self.daemon.process.wait(timeout=5)  # reap it: a zombie still "runs" for keepalived
        wait_for(
            lambda: not any(running(pid) for pid in pids),
            timeout=5,
            what=f"keepalived on {self.member} to die",
        )


def running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"
