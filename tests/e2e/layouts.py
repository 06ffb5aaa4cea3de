"""The two layouts of docs/high-availability.md, built from its blocks for one test.

``ActiveActive``: two nodes on loopback (each with its own service and health port from its
override file) behind a real HAProxy. ``ActivePassive``: two nodes, each in its own network
namespace with keepalived, and a client namespace that reaches them on the virtual address.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import asyncssh
from clients import CLIENT_ADDRESS, connect, write_client_key
from hakit import doc_block
from haproxy import HAProxy
from keepalived import Keepalived, NetnsLab
from nodes import Cluster, Node, shared_ini
from tests.integration.sshkit import free_port

BACKEND = "ferryd"  # the guide's haproxy.cfg backend
GUIDE_NODE_ADDRESSES = {"node-a": "10.0.0.11", "node-b": "10.0.0.12"}
GUIDE_BALANCER = "10.0.0.10/32"
GUIDE_SSH_PORT = "2222"
GUIDE_HEALTH_PORT = "8081"
LOOPBACK = "127.0.0.1"
VIRTUAL_ADDRESS = "10.0.0.100"
CLIENT_IN_NAMESPACE = "10.0.0.50"


@dataclass
class ActiveActive:
    """Two nodes behind HAProxy; clients connect to ``port`` from 127.0.0.2."""

    root: Path
    cluster: Cluster = field(init=False)
    haproxy: HAProxy = field(init=False)
    port: int = field(init=False)
    key_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.cluster = Cluster(self.root)
        self.key_file = write_client_key(self.root / "client")
        for name, address in GUIDE_NODE_ADDRESSES.items():
            ssh_port, health_port = free_port(), free_port()
            override = doc_block(
                f"active-active/{name}.ini",
                {  # whole lines: "address = " is also the end of "health_address = "
                    f"\nhealth_address = {address}\n": f"\nhealth_address = {LOOPBACK}\n",
                    f"\nhealth_port = {GUIDE_HEALTH_PORT}\n": f"\nhealth_port = {health_port}\n",
                    f"\naddress = {address}\n": f"\naddress = {LOOPBACK}\n",
                    f"\nport = {GUIDE_SSH_PORT}\n": f"\nport = {ssh_port}\n",
                },
            )
            self.cluster.add(
                name, ssh_port=ssh_port, health_port=health_port, override_text=override
            )
        self.port = free_port()
        socket_path = self.root / "haproxy" / "admin.sock"
        servers = {
            f"{GUIDE_NODE_ADDRESSES[name]}:{GUIDE_SSH_PORT} check port {GUIDE_HEALTH_PORT}": (
                f"{LOOPBACK}:{node.ssh_port} check port {node.health_port}"
            )
            for name, node in self.cluster.nodes.items()
        }
        config = doc_block(
            "active-active/haproxy.cfg",
            {
                "/run/haproxy/admin.sock": str(socket_path),
                "bind :22\n": f"bind {LOOPBACK}:{self.port}\n",
                **servers,
            },
        )
        self.haproxy = HAProxy(self.root / "haproxy", config, socket_path)

    @property
    def a(self) -> Node:
        return self.cluster.nodes["node-a"]

    @property
    def b(self) -> Node:
        return self.cluster.nodes["node-b"]

    def ini(self, accounts: str) -> str:
        """The guide's shared server.ini: storage here, HAProxy connecting from 127.0.0.1."""
        return shared_ini(
            "active-active/server.ini",
            self.cluster.storage,
            accounts,
            {f"proxy_protocol_trusted_sources = {GUIDE_BALANCER}": (
                f"proxy_protocol_trusted_sources = {LOOPBACK}/32"
            )},
        )  # fmt: skip

    def start(self, accounts: str) -> ActiveActive:
        """Write server.ini, start both nodes, then HAProxy; wait until both are UP."""
        self.cluster.write(self.ini(accounts))
        self.cluster.start()
        self.haproxy.start()
        self.haproxy.wait_up(BACKEND, list(self.cluster.nodes))
        return self

    async def connect(self, user: str) -> tuple[asyncssh.SSHClientConnection, str]:
        """A connection through HAProxy, and the node HAProxy gave it to."""
        marks = self.cluster.marks()
        connection = await connect(self.port, user)
        local_port = connection.get_extra_info("sockname")[1]
        return connection, self.cluster.wait_served_by(local_port, CLIENT_ADDRESS, marks)

    def stop(self) -> None:
        self.haproxy.stop()
        self.cluster.stop()


@dataclass
class ActivePassive:
    """Two nodes in namespaces ``a`` and ``b`` with keepalived; the client in ``c``."""

    root: Path
    lab: NetnsLab = field(init=False)
    cluster: Cluster = field(init=False)
    keepalived: dict[str, Keepalived] = field(init=False, default_factory=dict)
    key_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.lab = NetnsLab(self.root / "lab")
        self.cluster = Cluster(self.root)
        self.key_file = write_client_key(self.root / "client")
        for member, name in (("a", "node-a"), ("b", "node-b")):
            # Each node has its own network: the guide's ports are free in there.
            self.cluster.add(
                name,
                ssh_port=int(GUIDE_SSH_PORT),
                health_port=int(GUIDE_HEALTH_PORT),
                command_prefix=self.lab.exec_prefix(member),
            )
            conf = doc_block(f"active-passive/keepalived-{name}.conf")
            self.keepalived[member] = Keepalived(self.lab, member, conf)

    def node(self, member: str) -> Node:
        return self.cluster.nodes[f"node-{member}"]

    def ini(self, accounts: str) -> str:
        return shared_ini("active-passive/server.ini", self.cluster.storage, accounts, {})

    def build(self, accounts: str) -> ActivePassive:
        """The namespaces and the shared folder; nothing started yet."""
        self.lab.root.mkdir(parents=True, exist_ok=True)
        self.lab.build()
        self.cluster.write(self.ini(accounts))
        return self

    def holders(self) -> list[str]:
        return self.lab.holders(VIRTUAL_ADDRESS)

    def stop(self) -> None:
        self.cluster.stop()
        self.lab.teardown()
