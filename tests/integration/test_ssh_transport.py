"""What goes over the wire: no SSH_MSG_IGNORE padding packets with modern ciphers (it doubles
the packets of a transfer), kept for CBC ciphers where it is a countermeasure."""

from __future__ import annotations

import subprocess

import pytest
from sshkit import SshServer, account_section


def ignore_packets_received(ssh: SshServer, cipher: str) -> int:
    """Run OpenSSH sftp with packet-level debug output; count the type-2 packets it got."""
    batch = ssh.root / "ls.txt"
    batch.write_text("ls\nls\n")
    debug = ["-vvv", "-o", "LogLevel=DEBUG3", "-c", cipher]
    result = subprocess.run(
        [
            "sftp",
            *debug,
            "-P",
            str(ssh.port),
            *ssh.ssh_options(),
            "-b",
            str(batch),
            "alice@127.0.0.1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stderr.count("receive packet: type 2\n")


@pytest.mark.parametrize(
    ("cipher", "expect_ignores"),
    [
        ("aes128-gcm@openssh.com", False),
        ("chacha20-poly1305@openssh.com", False),
        ("aes128-ctr", False),
        ("aes128-cbc", True),
    ],
)
def test_ignore_packets_only_with_cbc_ciphers(
    ssh: SshServer, cipher: str, expect_ignores: bool
) -> None:
    ssh.start(accounts=account_section("alice"), service="ssh_cipher_list = all")
    received = ignore_packets_received(ssh, cipher)
    assert (received > 0) == expect_ignores, f"{received} SSH_MSG_IGNORE packets with {cipher}"
