"""Several nodes, one configuration folder: each node its own name, log, pid file and
override file; components placed on some nodes only; a change made on disk live on all.
"""

from __future__ import annotations

import dataclasses
import re
import time
from typing import TYPE_CHECKING

import pytest
from sshkit import PASSWORD, SshServer, account_section, replace_atomically

if TYPE_CHECKING:  # conftest is pytest's to import (tests/e2e has one too)
    from conftest import LogFile, ServeProcess

NODES = ("node-a", "node-b")
LIVE_WITHIN = 3.0


def shared_ini(ssh: SshServer, accounts: str, extra: str = "") -> str:
    return (
        f"""\
[server]
name = cluster
ssh_server_keys = ssh_host_ed25519_key
config_poll_interval = 0.5

[authentications/DEFAULT-AUTHENTICATION]
type = application

[event-handlers/audit]
type = local-file
path = log/{{host.name}}.log
entry_content = {{id}} {{message}}

[services/sftp]
type = ssh
address = 127.0.0.1
port = 0

[groups/DEFAULT_GROUP]
home_folder_path = {ssh.homes}/${{USER}}
create_home_folder = yes

[security-policies/DEFAULT-SECURITY-POLICY]
source_ip_ban_after_count = 0
failed_login_delay = 0
"""
        + extra
        + "\n"
        + accounts
    )


class Node:
    """One ``ferryd serve --node-name NAME --override FILE`` on the shared folder. ``ssh`` is
    the module's server seen through this node: its log, its process, its sftp port."""

    def __init__(self, ssh: SshServer, name: str) -> None:
        self.name = name
        self.override = ssh.root / f"{name}.override.ini"
        self.override.write_text(f"[server]\ndescription = node {name}\n")
        self.ssh = dataclasses.replace(ssh, log_file=f"log/{name}.log", process=None, port=0)

    @property
    def log(self) -> LogFile:
        return self.ssh.log

    @property
    def process(self) -> ServeProcess | None:
        return self.ssh.process

    def start(self) -> None:
        self.ssh.start("--node-name", self.name, "--override", str(self.override))
        self.ssh.port = self.ssh.service_port("sftp")


@pytest.fixture
def nodes(ssh: SshServer) -> tuple[Node, Node]:
    return Node(ssh, NODES[0]), Node(ssh, NODES[1])


async def test_each_node_has_its_own_log_and_pid_file_and_both_apply_an_edit(
    ssh: SshServer, nodes: tuple[Node, Node]
) -> None:
    ssh.config.write(shared_ini(ssh, account_section("alice")))
    for node in nodes:
        node.start()
    for node in nodes:
        assert node.log.count("20181") == 1
        assert f"as node {node.name}" in node.log.events("20001")[0]
        pid = (ssh.config.path / f"ferryd-{node.name}.pid").read_text().strip()
        assert node.process is not None and int(pid) == node.process.process.pid
        assert await node.ssh.can_log_in("alice")

    replace_atomically(
        ssh.config.ini, shared_ini(ssh, account_section("alice") + "\n" + account_section("bob"))
    )
    started = time.monotonic()
    for node in nodes:  # polled for longer: the assertion, not the poll, judges the delay
        await node.ssh.seconds_until_login("bob", 3 * LIVE_WITHIN)
        assert time.monotonic() - started < LIVE_WITHIN, f"bob not live on {node.name}"
    for node in nodes:  # the other node's events never land in this node's log
        other = NODES[1] if node.name == NODES[0] else NODES[0]
        assert not any(other in line for line in node.log.events("20001"))


async def test_a_component_runs_only_where_it_is_placed_and_moves_live(
    ssh: SshServer, nodes: tuple[Node, Node]
) -> None:
    def placed_on(where: str) -> str:
        return f"""
[services/partners]
type = ssh
name = partners
address = 127.0.0.1
port = 0
cluster_activation = {where}
"""

    ssh.config.write(shared_ini(ssh, account_section("alice"), placed_on("node-a")))
    node_a, node_b = nodes
    for node in nodes:
        node.start()
    partners_port = node_a.ssh.service_port("partners")
    assert await node_a.ssh.can_log_in("alice", port=partners_port)
    assert node_b.log.count("20253", "partners is not started on node node-b") == 1
    assert node_b.log.count("30076", "SSH service partners") == 0

    replace_atomically(
        ssh.config.ini, shared_ini(ssh, account_section("alice"), placed_on("node-b"))
    )
    assert node_b.process is not None and node_a.process is not None
    moved = node_b.ssh.wait_event("30076", "SSH service partners")
    found = re.fullmatch(r"30076 SSH service partners listening on 127\.0\.0\.1:(\d+)\.", moved)
    assert found, moved
    moved_port = int(found.group(1))
    assert moved_port not in (0, partners_port), "node-b must listen on a port of its own"
    node_a.ssh.wait_event("20157", "partners")
    assert await node_b.ssh.can_log_in("alice", port=moved_port)
    with pytest.raises(ConnectionRefusedError):  # node-a no longer serves partners
        async with await node_a.ssh.connect("alice", password=PASSWORD, port=partners_port):
            pass
    # The service every node runs was never touched.
    assert node_a.log.count("30076", "SSH service sftp") == 1


async def test_two_nodes_starting_together_hash_a_plain_password_once(
    ssh: SshServer, nodes: tuple[Node, Node]
) -> None:
    plain = account_section("carol", password=PASSWORD, key=None)
    ssh.config.write(shared_ini(ssh, plain))
    for node in nodes:
        node.ssh.process = ssh.ferryd.serve(
            ssh.config, "--node-name", node.name, "--override", str(node.override)
        )
    for node in nodes:
        node.ssh.wait_event("20181")
        node.ssh.port = node.ssh.service_port("sftp")
    text = ssh.config.ini.read_text()
    assert PASSWORD not in text
    assert text.count("$argon2id$") == 1
    assert sum(node.log.count("20197") for node in nodes) == 1, "hashed by both nodes"
    for node in nodes:
        assert await node.ssh.can_log_in("carol")
    assert (ssh.config.path / ".server.ini.lock").exists()


async def test_ferryd_drain_finds_the_named_node_only(
    ssh: SshServer, nodes: tuple[Node, Node]
) -> None:
    ssh.config.write(shared_ini(ssh, account_section("alice")))
    for node in nodes:
        node.start()
    node_a, node_b = nodes
    result = ssh.ferryd.run(
        "drain", "--config-dir", ssh.config.path, "--node-name", "node-a", timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "Node node-a stopped." in result.stdout
    assert node_a.process is not None and node_a.process.wait_exit() == 0
    assert not (ssh.config.path / "ferryd-node-a.pid").exists()
    assert node_b.process is not None and node_b.process.is_running()
    assert await node_b.ssh.can_log_in("alice")
    assert node_a.log.count("20263") == 1, "node-a's drain event"
    assert node_b.log.count("20263") == 0


async def test_ferryd_drain_refuses_a_pid_file_naming_another_node(
    ssh: SshServer, nodes: tuple[Node, Node]
) -> None:
    """In containers pids repeat across hosts: node-a's pid file in the shared folder may name
    a pid that is node-b's here. Draining node-a must not stop node-b."""
    ssh.config.write(shared_ini(ssh, account_section("alice")))
    node_b = nodes[1]
    node_b.start()
    assert node_b.process is not None
    (ssh.config.path / "ferryd-node-a.pid").write_text(f"{node_b.process.process.pid}\n")
    result = ssh.ferryd.run("drain", "--config-dir", ssh.config.path, "--node-name", "node-a")
    assert result.returncode == 1
    assert "is another node" in result.stderr, result.stderr
    assert node_b.process.is_running()
    assert await node_b.ssh.can_log_in("alice")
