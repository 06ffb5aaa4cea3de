"""Configuration changes apply by themselves: no SIGHUP, no restart, open sessions untouched.

The files are edited the ways administrators and tools do (in place, by atomic rename, an
override file created later, a file behind a symlink that only polling can see), and a broken
edit is refused while the last good configuration keeps serving.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import asyncssh
from polling import async_wait_for
from sshkit import PASSWORD, SshServer, account_section, replace_atomically

LIVE_WITHIN = 3.0  # seconds; the acceptance bound for an account added on disk
# How long a test polls before it gives up: longer than LIVE_WITHIN, so that a change applied
# too late fails the test's own assertion (with the time it took), not the poll.
PATIENCE = 3 * LIVE_WITHIN


def watched_only(ssh: SshServer, accounts: str) -> str:
    """server.ini with polling off: only the folder watch can notice a change."""
    return ssh.ini(accounts=accounts).replace("[server]\n", "[server]\nconfig_poll_interval = 0\n")


async def test_an_account_added_in_place_logs_in_without_sighup(ssh: SshServer) -> None:
    ssh.config.write(watched_only(ssh, account_section("alice")))
    ssh.start()
    async with await ssh.connect("alice", password=PASSWORD) as session:
        ssh.config.write(
            watched_only(ssh, account_section("alice") + "\n" + account_section("bob"))
        )
        assert await ssh.seconds_until_login("bob", PATIENCE) < LIVE_WITHIN
        async with session.start_sftp_client() as sftp:  # opened before the change: carries on
            await sftp.listdir(".")
    assert ssh.process is not None
    ssh.process.wait_for_event(ssh.log, "20251", "configuration files changed")
    assert ssh.log.count("20254") == 0, "a change to the configuration does not reopen logs"


async def test_a_file_replaced_by_rename_is_applied(ssh: SshServer) -> None:
    ssh.config.write(watched_only(ssh, account_section("alice")))
    ssh.start()
    replace_atomically(
        ssh.config.ini,
        watched_only(ssh, account_section("alice") + "\n" + account_section("carol")),
    )
    await ssh.seconds_until_login("carol", LIVE_WITHIN)


async def test_a_broken_edit_is_refused_and_the_last_good_configuration_serves(
    ssh: SshServer,
) -> None:
    ssh.start(accounts=account_section("alice"))
    good = ssh.config.ini.read_text()
    # A valid new account next to a broken one: refusing the file refuses both.
    ssh.config.ini.write_text(
        good
        + "\n"
        + account_section("dave")
        + "\n[accounts/erin]\nname = erin\nenabled = perhaps\n"
    )
    assert ssh.process is not None
    refused = ssh.process.wait_for_event(ssh.log, "20010", "enabled")[-1]
    assert f"{ssh.config.ini}:" in refused
    assert await ssh.can_log_in("alice")
    assert not await ssh.can_log_in("dave")


async def test_an_override_file_created_later_is_applied(ssh: SshServer) -> None:
    ssh.start(accounts=account_section("alice"))
    assert await ssh.can_log_in("alice")
    ssh.config.write_override("[accounts/alice]\nenabled = no\n")

    async def refused() -> bool:
        return not await ssh.can_log_in("alice")

    await async_wait_for(refused, timeout=LIVE_WITHIN, what="the override to refuse alice")
    assert ssh.process is not None
    ssh.process.wait_for_event(ssh.log, "20142", "alice with password rejected")


async def test_polling_sees_changes_no_notification_reports(ssh: SshServer, tmp_path: Path) -> None:
    """server.ini is a symlink to a file in a folder nobody watches, as a share mounted
    elsewhere would be: writes to the target raise no event in the configuration folder."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "server.ini"
    ssh.write(accounts=account_section("alice"))
    ssh.config.ini.rename(target)
    ssh.config.ini.symlink_to(target)
    text = target.read_text().replace("[server]\n", "[server]\nconfig_poll_interval = 0.3\n")
    target.write_text(text)
    ssh.start()
    target.write_text(text + "\n" + account_section("erin"))
    await ssh.seconds_until_login("erin", LIVE_WITHIN)


async def test_with_config_watch_off_changes_wait_for_sighup(ssh: SshServer) -> None:
    text = ssh.ini(accounts=account_section("alice"))
    text = text.replace("[server]\n", "[server]\nconfig_watch = no\n")
    ssh.config.write(text)
    ssh.start()
    ssh.config.ini.write_text(text + "\n" + account_section("frank"))
    time.sleep(1.5)  # a watched change is applied well within this
    assert not await ssh.can_log_in("frank"), "applied without SIGHUP"
    assert ssh.process is not None
    ssh.process.hup()
    await ssh.seconds_until_login("frank", LIVE_WITHIN)


def host_key_of(connection: asyncssh.SSHClientConnection) -> str:
    key = connection.get_server_host_key()
    assert key is not None
    return key.export_public_key().decode().split()[1]


async def test_a_replaced_host_key_is_offered_to_new_connections(ssh: SshServer) -> None:
    ssh.config.write(watched_only(ssh, account_section("alice")))
    ssh.start()
    key_path = ssh.config.path / "ssh_host_ed25519_key"
    async with await ssh.connect("alice", password=PASSWORD) as before:
        old_key = host_key_of(before)
        new = asyncssh.generate_private_key("ssh-ed25519")
        temporary = key_path.with_name("new_key.tmp")
        new.write_private_key(str(temporary))
        os.replace(temporary, key_path)  # how a key rotation tool installs it
        new_key = new.export_public_key().decode().split()[1]
        assert ssh.process is not None
        ssh.process.wait_for_event(ssh.log, "20267", str(key_path))
        async with await ssh.connect("alice", password=PASSWORD) as after:
            assert host_key_of(after) == new_key != old_key
        async with before.start_sftp_client() as sftp:  # the session from before carries on
            await sftp.listdir(".")
    assert ssh.log.count("20012") == 0, "the service was not restarted"


async def test_a_broken_host_key_keeps_the_previous_one(ssh: SshServer) -> None:
    # Polled as well as watched: a poll must not try (and refuse) the same file again.
    polled = ssh.ini(accounts=account_section("alice"))
    ssh.config.write(polled.replace("[server]\n", "[server]\nconfig_poll_interval = 0.2\n"))
    ssh.start()
    key_path = ssh.config.path / "ssh_host_ed25519_key"
    async with await ssh.connect("alice", password=PASSWORD) as before:
        old_key = host_key_of(before)
    replace_atomically(key_path, "-----BEGIN OPENSSH PRIVATE KEY-----\ntruncated\n")
    assert ssh.process is not None
    # Refused like a broken edit of server.ini: the event names the line that names the key.
    failed = ssh.process.wait_for_event(ssh.log, "20010")[-1]
    assert "ssh_host_ed25519_key" in failed, failed
    assert "[services/sftp] ssh_server_keys: cannot load host key" in failed, failed
    async with await ssh.connect("alice", password=PASSWORD) as after:
        assert host_key_of(after) == old_key
    await asyncio.sleep(1.0)  # five polls
    assert ssh.log.count("20010") == 1, "the same broken file was refused again"
    new = asyncssh.generate_private_key("ssh-ed25519")
    replace_atomically(key_path, new.export_private_key().decode())  # repaired: applied
    ssh.process.wait_for_event(ssh.log, "20267", str(key_path))


async def test_a_key_rotated_with_watching_off_applies_on_sighup(ssh: SshServer) -> None:
    ssh.config.write(
        ssh.ini(accounts=account_section("alice")).replace(
            "[server]\n", "[server]\nconfig_watch = no\n"
        )
    )
    ssh.start()
    key_path = ssh.config.path / "ssh_host_ed25519_key"
    new = asyncssh.generate_private_key("ssh-ed25519")
    replace_atomically(key_path, new.export_private_key().decode())
    assert ssh.process is not None
    ssh.process.hup()
    ssh.process.wait_for_event(ssh.log, "20267", str(key_path))
    async with await ssh.connect("alice", password=PASSWORD) as after:
        assert host_key_of(after) == new.export_public_key().decode().split()[1]


async def test_a_key_rotated_together_with_an_edit_is_applied(ssh: SshServer) -> None:
    """One deployment changes server.ini and the key at once: both are applied."""
    ssh.config.write(watched_only(ssh, account_section("alice")))
    ssh.start()
    key_path = ssh.config.path / "ssh_host_ed25519_key"
    new = asyncssh.generate_private_key("ssh-ed25519")
    replace_atomically(key_path, new.export_private_key().decode())
    ssh.config.write(watched_only(ssh, account_section("alice") + "\n" + account_section("bob")))
    assert await ssh.seconds_until_login("bob", PATIENCE) < LIVE_WITHIN
    assert ssh.process is not None
    ssh.process.wait_for_event(ssh.log, "20267", str(key_path))
    async with await ssh.connect("bob", password=PASSWORD) as after:
        assert host_key_of(after) == new.export_public_key().decode().split()[1]
