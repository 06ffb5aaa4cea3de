"""What every case gets: the workspace, the sizes, the servers and a progress printer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from harness.ferryd import Handlers, ferryd_server
from harness.openssh import openssh_server
from harness.results import Measurement
from harness.server import Server
from harness.sysuser import Account
from harness.workspace import GIB, MIB, Workspace


@dataclass(frozen=True)
class Scale:
    """How much each case does; ``--quick`` shrinks everything to check the harness."""

    big_file: int
    small_files: int
    small_file: int
    sessions: int
    session_bytes: int
    sequential_logins: int
    parallel_logins: int
    login_width: int
    idle_sessions: int
    rounds: int


FULL = Scale(
    big_file=GIB,
    small_files=2000,
    small_file=4096,
    sessions=50,
    session_bytes=20 * MIB,
    sequential_logins=40,
    parallel_logins=200,
    login_width=20,
    idle_sessions=200,
    rounds=3,
)
QUICK = Scale(
    big_file=64 * MIB,
    small_files=200,
    small_file=4096,
    sessions=10,
    session_bytes=4 * MIB,
    sequential_logins=10,
    parallel_logins=40,
    login_width=20,
    idle_sessions=20,
    rounds=2,
)


@dataclass
class Context:
    """Shared state of one run. Servers are configured on first use and started per case."""

    workspace: Workspace
    scale: Scale
    account: Account
    only: str | None = None
    case: str = ""
    _servers: dict[str, Server] = field(default_factory=dict)

    def server(self, name: str) -> Server:
        """The configured server called ``name`` (openssh, ferryd, ferryd-quiet, ...)."""
        if name not in self._servers:
            if name == "openssh":
                self._servers[name] = openssh_server(self.workspace, self.account)
            else:
                self._servers[name] = ferryd_server(
                    self.workspace, Handlers(name), self.account.hash
                )
        return self._servers[name]

    def pair(self) -> list[Server]:
        """OpenSSH and ferryd, or just the one ``--only`` names."""
        names = [self.only] if self.only else ["openssh", "ferryd"]
        return [self.server(name) for name in names]

    def progress(self, text: str) -> None:
        """One line of progress, prefixed with the case."""
        print(f"  [{self.case}] {text}", flush=True)

    def alternate(self, servers: list[Server]) -> Iterator[tuple[int, Server]]:
        """(round, server) pairs, A B B A A B ...: each server goes first in every other round,
        so machine drift and warm caches favour neither."""
        for index in range(self.scale.rounds):
            order = servers if index % 2 == 0 else servers[::-1]
            for server in order:
                yield index, server


CaseFunction = Callable[[Context], list[Measurement]]
