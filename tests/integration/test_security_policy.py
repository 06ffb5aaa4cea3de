"""Security policies against a real ``ferryd serve``: deny lists, address rules, brute-force bans
(kept in the state store across restarts, listed and lifted with ``ferryd bans``), dropping
banned addresses at connection, the failed-login delay, and the legacy screening methods.

Other loopback addresses (127.0.0.2, 127.0.0.3) stand in for other clients: Linux routes the
whole 127/8 to the loopback interface, so a client can pick its source address.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import asyncssh
import pytest
from sshkit import PASSWORD, SshServer, account_section, other_key

OTHER = "127.0.0.2"
THIRD = "127.0.0.3"
BAN_AFTER = 3
ACCOUNTS = account_section("alice") + "\n" + account_section("admin")


def banning_policy(**options: object) -> str:
    lines = {
        "source_ip_ban_after_count": BAN_AFTER,
        "source_ip_ban_interval": 600,
        "failed_login_delay": 0,
    }
    lines.update(options)
    return "\n".join(f"{name} = {value}" for name, value in lines.items())


async def login(
    server: SshServer, user: str, password: str, source: str = "127.0.0.1", **extra: Any
) -> bool:
    """True when the password login succeeds; False when it is refused."""
    try:
        async with (
            await server.connect(user, password=password, local_addr=(source, 0), **extra) as conn,
            conn.start_sftp_client() as sftp,
        ):
            await sftp.listdir(".")
        return True
    except asyncssh.PermissionDenied:
        return False


async def fail(server: SshServer, times: int, source: str = "127.0.0.1") -> None:
    for _ in range(times):
        assert not await login(server, "alice", "wrong password", source)


def banner_of(port: int, source: str) -> bytes:
    """What the server sends a raw TCP client within 3 s: b'' when it hangs up at once."""
    with socket.create_connection(("127.0.0.1", port), timeout=3, source_address=(source, 0)) as s:
        try:
            return s.recv(64)
        except ConnectionResetError:
            return b""


# -- brute force -------------------------------------------------------------------------


async def test_failures_ban_only_the_guilty_address_and_the_ban_survives_a_restart(
    ssh: SshServer,
) -> None:
    ssh.start(accounts=ACCOUNTS, policy=banning_policy())
    await fail(ssh, BAN_AFTER - 1)
    assert await login(ssh, "alice", PASSWORD), "a success before the threshold still works"
    await fail(ssh, BAN_AFTER - 1)
    assert await login(ssh, "alice", PASSWORD), "a success resets the run of failures"
    await fail(ssh, BAN_AFTER)

    ban = ssh.process.wait_for_event(ssh.log, "20257", "Address 127.0.0.1 banned")[-1]  # type: ignore[union-attr]
    assert "security-policies/DEFAULT-SECURITY-POLICY" in ban
    assert f"after {BAN_AFTER} failed logins" in ban
    assert not await login(ssh, "alice", PASSWORD), "the right password is refused while banned"
    blocked = ssh.process.wait_for_event(ssh.log, "20005", "Login of alice from 127.0.0.1")  # type: ignore[union-attr]
    assert "banned for" in blocked[-1]
    assert await login(ssh, "alice", PASSWORD, OTHER), "another address is not banned"

    assert ssh.process is not None
    assert ssh.process.stop() == 0
    ssh.start()
    assert not await login(ssh, "alice", PASSWORD), "the ban outlives a restart"
    assert await login(ssh, "alice", PASSWORD, OTHER)


async def test_bans_list_and_remove_lift_a_ban_on_the_running_server(ssh: SshServer) -> None:
    ssh.start(accounts=ACCOUNTS, policy=banning_policy())
    await fail(ssh, BAN_AFTER, OTHER)
    ssh.process.wait_for_event(ssh.log, "20257", f"Address {OTHER} banned")  # type: ignore[union-attr]

    listed = ssh.ferryd.run("bans", "list", "--config-dir", ssh.config.path)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith(OTHER))
    assert "security-policies/DEFAULT-SECURITY-POLICY" in row
    assert "invalid password" in row

    missing = ssh.ferryd.run("bans", "remove", "192.0.2.9", "--config-dir", ssh.config.path)
    assert missing.returncode == 1 and "192.0.2.9 is not banned" in missing.stderr
    junk = ssh.ferryd.run("bans", "remove", "not-an-ip", "--config-dir", ssh.config.path)
    assert junk.returncode == 1 and "not-an-ip" in junk.stderr

    removed = ssh.ferryd.run("bans", "remove", OTHER, "--config-dir", ssh.config.path)
    assert removed.returncode == 0, removed.stderr
    assert f"Lifted the ban of {OTHER}" in removed.stdout
    ssh.process.wait_for_event(ssh.log, "50008", f"Ban of {OTHER}")  # type: ignore[union-attr]
    assert await login(ssh, "alice", PASSWORD, OTHER), "the lifted address logs in again"
    empty = ssh.ferryd.run("bans", "list", "--config-dir", ssh.config.path)
    assert empty.stdout == "No address is banned.\n"


def test_bans_commands_never_create_a_store_and_say_where_they_looked(ssh: SshServer) -> None:
    ssh.write(accounts=ACCOUNTS)  # no node has run: there is no state store yet
    for command in (["list"], ["remove", "192.0.2.9"]):
        result = ssh.ferryd.run("bans", *command, "--config-dir", ssh.config.path)
        assert result.returncode == 1, result.stdout
        assert f"no state store at {ssh.config.path / 'state.db3'}" in result.stderr
    assert not (ssh.config.path / "state.db3").exists()


async def test_key_offers_and_server_side_faults_do_not_count_toward_a_ban(
    ssh: SshServer,
) -> None:
    ssh.start(accounts=ACCOUNTS, policy=banning_policy())
    for _ in range(BAN_AFTER + 2):
        with pytest.raises(asyncssh.PermissionDenied):
            async with await ssh.connect("alice", key=other_key(), local_addr=(THIRD, 0)):
                pass
    assert await login(ssh, "alice", PASSWORD, THIRD)
    assert ssh.log.count("20257") == 0


async def test_block_source_at_connection_hangs_up_before_the_ssh_greeting(
    ssh: SshServer,
) -> None:
    ssh.start(
        accounts=ACCOUNTS,
        policy=banning_policy(source_ip_filter=f"deny {THIRD}"),
        service="block_source_at_connection = yes",
    )
    assert banner_of(ssh.port, OTHER).startswith(b"SSH-2.0-")
    await fail(ssh, BAN_AFTER, OTHER)
    ssh.process.wait_for_event(ssh.log, "20257", f"Address {OTHER} banned")  # type: ignore[union-attr]

    assert banner_of(ssh.port, OTHER) == b"", "a banned address gets no greeting"
    assert banner_of(ssh.port, THIRD) == b"", "an address the filter denies gets no greeting"
    assert banner_of(ssh.port, "127.0.0.1").startswith(b"SSH-2.0-")
    dropped = ssh.log.events("20005", "(connection dropped)")
    assert any(OTHER in line for line in dropped) and any(THIRD in line for line in dropped)


async def test_without_block_source_at_connection_a_banned_address_is_refused_at_login(
    ssh: SshServer,
) -> None:
    ssh.start(accounts=ACCOUNTS, policy=banning_policy())
    await fail(ssh, BAN_AFTER, OTHER)
    ssh.process.wait_for_event(ssh.log, "20257", f"Address {OTHER} banned")  # type: ignore[union-attr]
    assert banner_of(ssh.port, OTHER).startswith(b"SSH-2.0-")
    assert not await login(ssh, "alice", PASSWORD, OTHER)


# -- deny lists and address rules ----------------------------------------------------------


@pytest.fixture(scope="module")
def policed(module_ssh: Any) -> SshServer:
    """Deny list, an allow rule that exempts 127.0.0.2 and a deny rule for 127.0.0.3."""
    server: SshServer = module_ssh("policed")
    server.start(
        accounts=ACCOUNTS,
        policy=banning_policy(
            deny_usernames="root, Admin",
            source_ip_filter=f"allow {OTHER}\n    deny {THIRD}",
        ),
    )
    return server


async def test_denied_name_is_refused_before_any_method_even_with_its_password(
    policed: SshServer,
) -> None:
    assert not await login(policed, "ADMIN", PASSWORD)
    line = policed.process.wait_for_event(policed.log, "20136", "Login of ADMIN")[-1]  # type: ignore[union-attr]
    assert "deny_usernames" in line
    assert not policed.log.events("20142", "Login of ADMIN"), "no method was asked"
    assert await login(policed, "alice", PASSWORD)


async def test_allow_rule_exempts_the_address_from_every_other_check(policed: SshServer) -> None:
    assert await login(policed, "admin", PASSWORD, OTHER), "no deny list for an allowed address"
    for _ in range(BAN_AFTER + 1):
        assert not await login(policed, "alice", "wrong", OTHER)
    assert await login(policed, "alice", PASSWORD, OTHER), "an allowed address is never banned"
    assert not policed.log.events("20257", OTHER)


async def test_deny_rule_refuses_the_address_whatever_the_credentials(policed: SshServer) -> None:
    assert not await login(policed, "alice", PASSWORD, THIRD)
    line = policed.process.wait_for_event(policed.log, "20005", f"from {THIRD}")[-1]  # type: ignore[union-attr]
    assert "source_ip_filter" in line


async def test_policy_changes_apply_to_the_next_login_without_restart(ssh: SshServer) -> None:
    ssh.start(accounts=ACCOUNTS, policy=banning_policy())
    assert await login(ssh, "alice", PASSWORD)
    ssh.reload(accounts=ACCOUNTS, policy=banning_policy(deny_usernames="alice"))
    assert not await login(ssh, "alice", PASSWORD)
    ssh.process.wait_for_event(ssh.log, "20136", "Login of alice")  # type: ignore[union-attr]


async def test_a_service_without_policy_neither_denies_nor_bans(ssh: SshServer) -> None:
    ssh.start(
        accounts=ACCOUNTS, service="security_policy =", policy="source_ip_ban_after_count = 1"
    )
    assert not await login(ssh, "alice", "wrong")
    assert await login(ssh, "admin", PASSWORD), "the default deny list does not apply"
    assert await login(ssh, "alice", PASSWORD)
    assert ssh.log.count("20257") == 0


async def test_unknown_policy_is_refused_with_its_line(ssh: SshServer) -> None:
    ssh.write(accounts=ACCOUNTS, service="security_policy = nowhere")
    result = ssh.ferryd.run("check", "--config-dir", ssh.config.path)
    assert result.returncode == 1
    assert "no [security-policies/nowhere] section is defined" in result.stdout
    assert "[services/sftp] security_policy" in result.stdout


# -- failed-login delay ------------------------------------------------------------------


async def test_refusals_wait_the_delay_without_holding_up_other_clients(ssh: SshServer) -> None:
    delay = 1.5
    ssh.start(accounts=ACCOUNTS, policy=banning_policy(failed_login_delay=delay))
    finished: list[str] = []

    async def timed(name: str, user: str, password: str) -> float:
        started = time.monotonic()
        await login(ssh, user, password)
        finished.append(name)
        return time.monotonic() - started

    wrong, unknown, _ = await asyncio.gather(
        timed("wrong", "alice", "wrong password"),
        timed("unknown", "nobody-here", "whatever"),
        timed("good", "alice", PASSWORD),
    )
    assert wrong >= delay and unknown >= delay, "unknown names and wrong passwords wait alike"
    assert finished[0] == "good", "a good login is not queued behind the refused ones"


# -- legacy screening methods and anonymous ------------------------------------------------

LEGACY = """
[authentications/off]
type = deny-username
usernames = alice
enabled = no

[authentications/deny]
type = deny-username
usernames = Mallory

[authentications/ban]
type = ip-time-ban
ban_after_count = 2
ban_interval = 600

[authentications/anon]
type = anonymous
anonymous_account_uuid = public

[accounts/public]
name = public-downloads
"""


@pytest.fixture(scope="module")
def legacy(module_ssh: Any) -> SshServer:
    server: SshServer = module_ssh("legacy")
    server.start(
        accounts=ACCOUNTS + "\n" + account_section("mallory"),
        service="authentications = off, deny, ban, anon, DEFAULT-AUTHENTICATION",
        extra=LEGACY,
    )
    return server


async def test_a_disabled_method_is_skipped_with_an_event(legacy: SshServer) -> None:
    assert await login(legacy, "alice", PASSWORD), "the disabled method would refuse alice"
    line = legacy.process.wait_for_event(legacy.log, "20111", "off skipped for alice")[-1]  # type: ignore[union-attr]
    assert line.endswith("disabled.")


async def test_deny_username_method_refuses_its_names(legacy: SshServer) -> None:
    assert not await login(legacy, "mallory", PASSWORD)
    line = legacy.process.wait_for_event(legacy.log, "20136", "Login of mallory")[-1]  # type: ignore[union-attr]
    assert "authentications/deny" in line
    assert not legacy.log.events("20255", "deny-username"), "a screen passes silently"


async def test_ip_time_ban_method_bans_through_the_shared_store(legacy: SshServer) -> None:
    await fail(legacy, 2, OTHER)
    line = legacy.process.wait_for_event(legacy.log, "20257", f"Address {OTHER}")[-1]  # type: ignore[union-attr]
    assert "authentications/ban" in line
    assert not await login(legacy, "alice", PASSWORD, OTHER)
    legacy.process.wait_for_event(
        legacy.log, "20005", f"from {OTHER} blocked by authentications/ban"
    )  # type: ignore[union-attr]
    listed = legacy.ferryd.run("bans", "list", "--config-dir", legacy.config.path)
    assert "authentications/ban" in listed.stdout


async def test_anonymous_logs_in_with_any_password_as_the_mapped_account(
    legacy: SshServer,
) -> None:
    assert await login(legacy, "Anonymous", "anything@example.com", THIRD)
    line = legacy.process.wait_for_event(legacy.log, "20137", "public-downloads authenticated")[-1]  # type: ignore[union-attr]
    assert "anonymous method anon" in line
    assert legacy.home("public-downloads").is_dir(), "the session ran in the mapped home"
    assert await login(legacy, "alice", PASSWORD, THIRD), "other names go to the next method"
