"""Several nodes, one configuration folder: each node its own name, log, pid file and
override file; components placed on some nodes only; a change made on disk live on all.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh
import pytest
from sshkit import PASSWORD, SshServer, account_section

if TYPE_CHECKING:  # conftest is pytest's to import (tests/e2e has one too)
    from conftest import Ferryd, ServeProcess

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


def replace_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


class Node:
    def __init__(self, ssh: SshServer, name: str) -> None:
        self.name = name
        self.log = ssh.config.log(f"log/{name}.log")
        self.override = ssh.root / f"{name}.override.ini"
        self.override.write_text(f"[server]\ndescription = node {name}\n")
        self.process: ServeProcess | None = None
        self.ferryd: Ferryd = ssh.ferryd
        self.ssh = ssh

    def start(self) -> None:
        self.process = self.ferryd.start(
            self.ssh.config,
            "--node-name",
            self.name,
            "--override",
            str(self.override),
            log=self.log,
        )

    def port(self, service: str = "SSH service") -> int:
        assert self.process is not None
        line = self.process.wait_for_event(self.log, "30076", service)[-1]
        found = re.search(r":(\d+)\.$", line)
        assert found, line
        return int(found.group(1))

    async def logs_in(self, user: str, port: int | None = None) -> bool:
        try:
            async with asyncssh.connect(
                "127.0.0.1",
                port or self.port(),
                username=user,
                password=PASSWORD,
                client_keys=[],
                known_hosts=None,
                preferred_auth="password",
            ):
                return True
        except (asyncssh.PermissionDenied, OSError):
            return False


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
        assert await node.logs_in("alice")

    replace_atomically(
        ssh.config.ini, shared_ini(ssh, account_section("alice") + "\n" + account_section("bob"))
    )
    started = time.monotonic()
    for node in nodes:
        while not await node.logs_in("bob"):
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
    partners_port = node_a.port("SSH service partners")
    assert await node_a.logs_in("alice", partners_port)
    assert node_b.log.count("20253", "partners is not started on node node-b") == 1
    assert node_b.log.count("30076", "SSH service partners") == 0

    replace_atomically(
        ssh.config.ini, shared_ini(ssh, account_section("alice"), placed_on("node-b"))
    )
    assert node_b.process is not None and node_a.process is not None
    moved = node_b.process.wait_for_event(node_b.log, "30076", "SSH service partners")
    assert moved
    node_a.process.wait_for_event(node_a.log, "20157", "partners")
    assert await node_b.logs_in("alice", node_b.port("SSH service partners"))
    assert not await node_a.logs_in("alice", partners_port), "node-a still serves partners"
    # The service every node runs was never touched.
    assert node_a.log.count("30076", "SSH service sftp") == 1


async def test_two_nodes_starting_together_hash_a_plain_password_once(
    ssh: SshServer, nodes: tuple[Node, Node]
) -> None:
    plain = account_section("carol", password=PASSWORD, key=None)
    ssh.config.write(shared_ini(ssh, plain))
    for node in nodes:
        node.process = node.ferryd.serve(
            ssh.config, "--node-name", node.name, "--override", str(node.override)
        )
    for node in nodes:
        assert node.process is not None
        node.process.wait_for_event(node.log, "20181")
    text = ssh.config.ini.read_text()
    assert PASSWORD not in text
    assert text.count("$argon2id$") == 1
    assert sum(node.log.count("20197") for node in nodes) == 1, "hashed by both nodes"
    for node in nodes:
        assert await node.logs_in("carol")
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
    assert await node_b.logs_in("alice")
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
    assert await node_b.logs_in("alice")
