"""Security policies against a real ``ferryd serve``: deny lists, address rules, brute-force bans
(kept in the state store across restarts, listed and lifted with ``ferryd bans``), dropping
banned addresses at connection, the failed-login delay, and the legacy screening methods.

Other loopback addresses (127.0.0.2, 127.0.0.3) stand in for other clients: Linux routes the
whole 127/8 to the loopback interface, so a client can pick its source address.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
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


async def fail(server: SshServer, times: int, source: str = "127.0.0.1") -> None:
    for _ in range(times):
        assert not await server.can_log_in("alice", password="wrong password", source=source)


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
    assert await ssh.can_log_in("alice"), "a success before the threshold still works"
    await fail(ssh, BAN_AFTER - 1)
    assert await ssh.can_log_in("alice"), "a success resets the run of failures"
    await fail(ssh, BAN_AFTER)

    ban = ssh.wait_event("20257", "Address 127.0.0.1 banned")
    assert "security-policies/DEFAULT-SECURITY-POLICY" in ban
    assert f"after {BAN_AFTER} failed logins" in ban
    assert not await ssh.can_log_in("alice"), "the right password is refused while banned"
    blocked = ssh.wait_event("20005", "Login of alice from 127.0.0.1")
    assert "banned for" in blocked
    assert await ssh.can_log_in("alice", source=OTHER), "another address is not banned"

    assert ssh.process is not None
    assert ssh.process.stop() == 0
    ssh.start()
    assert not await ssh.can_log_in("alice"), "the ban outlives a restart"
    assert await ssh.can_log_in("alice", source=OTHER)


async def test_an_unreadable_state_store_is_reported_and_known_bans_keep_applying(
    ssh: SshServer,
) -> None:
    ssh.start(accounts=ACCOUNTS, policy=banning_policy())
    await fail(ssh, BAN_AFTER, OTHER)
    ssh.wait_event("20257", f"Address {OTHER} banned")
    state = ssh.config.path / "state.db3"

    # Another process breaks the store under the running node.
    with sqlite3.connect(state) as db:
        db.execute("ALTER TABLE bans RENAME TO bans_away")
    failing = ssh.wait_event("20270")
    assert failing == f"20270 Bans cannot be read from the state store {state}: no such table: bans"
    assert not await ssh.can_log_in("alice", source=OTHER), "a known ban still applies"
    assert await ssh.can_log_in("alice"), "other addresses are served"
    await asyncio.sleep(1.5)  # more refreshes fail
    assert ssh.log.count("20270") == 1, "said once, not at every refresh"

    with sqlite3.connect(state) as db:
        db.execute("ALTER TABLE bans_away RENAME TO bans")
    back = ssh.wait_event("20271")
    assert back.startswith(f"20271 Bans are read from the state store {state} again after ")
    assert not await ssh.can_log_in("alice", source=OTHER), "the ban is still in the store"


async def test_an_ip_time_ban_method_says_when_the_store_does_not_take_a_failure(
    ssh: SshServer,
) -> None:
    """Without a policy counting the same attempt, the method's own store fault is the only
    trace that failures stopped counting toward its bans."""
    ssh.start(
        accounts=ACCOUNTS,
        policy="source_ip_ban_after_count = 0\nfailed_login_delay = 0",
        service="authentications = ban, DEFAULT-AUTHENTICATION",
        extra="[authentications/ban]\ntype = ip-time-ban\nban_after_count = 2\n",
    )
    state = ssh.config.path / "state.db3"
    with sqlite3.connect(state) as db:
        db.execute("ALTER TABLE login_failures RENAME TO login_failures_away")
    try:
        await fail(ssh, 1)
        line = ssh.wait_event("20272")
        assert line == (
            "20272 Failed logins from 127.0.0.1 could not be counted by authentications/ban:"
            " no such table: login_failures"
        )
        assert await ssh.can_log_in("alice"), "the store fault fails no login"
    finally:
        with sqlite3.connect(state) as db:
            db.execute("ALTER TABLE login_failures_away RENAME TO login_failures")
    await fail(ssh, 2)
    ssh.wait_event("20257", "Address 127.0.0.1 banned")


async def test_bans_list_and_remove_lift_a_ban_on_the_running_server(ssh: SshServer) -> None:
    ssh.start(accounts=ACCOUNTS, policy=banning_policy())
    await fail(ssh, BAN_AFTER, OTHER)
    ssh.wait_event("20257", f"Address {OTHER} banned")

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
    ssh.wait_event("50008", f"Ban of {OTHER}")
    assert await ssh.can_log_in("alice", source=OTHER), "the lifted address logs in again"
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
    assert await ssh.can_log_in("alice", source=THIRD)
    # The login's 20137 comes after any ban the refusals before it could have caused.
    ssh.wait_event("20137", "alice authenticated with password")
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
    ssh.wait_event("20257", f"Address {OTHER} banned")

    assert banner_of(ssh.port, OTHER) == b"", "a banned address gets no greeting"
    assert banner_of(ssh.port, THIRD) == b"", "an address the filter denies gets no greeting"
    assert banner_of(ssh.port, "127.0.0.1").startswith(b"SSH-2.0-")
    # Written by the handler in its own time: wait for the second drop's line, then look.
    ssh.wait_event("20005", "(connection dropped)", count=2)
    dropped = ssh.log.events("20005", "(connection dropped)")
    assert any(OTHER in line for line in dropped) and any(THIRD in line for line in dropped)


async def test_without_block_source_at_connection_a_banned_address_is_refused_at_login(
    ssh: SshServer,
) -> None:
    ssh.start(accounts=ACCOUNTS, policy=banning_policy())
    await fail(ssh, BAN_AFTER, OTHER)
    ssh.wait_event("20257", f"Address {OTHER} banned")
    assert banner_of(ssh.port, OTHER).startswith(b"SSH-2.0-")
    assert not await ssh.can_log_in("alice", source=OTHER)


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
    assert not await policed.can_log_in("ADMIN")
    line = policed.wait_event("20136", "Login of ADMIN")
    assert "deny_usernames" in line
    assert not policed.log.events("20142", "Login of ADMIN"), "no method was asked"
    assert await policed.can_log_in("alice")


async def test_allow_rule_exempts_the_address_from_every_other_check(policed: SshServer) -> None:
    assert await policed.can_log_in("admin", source=OTHER), "no deny list for an allowed address"
    for _ in range(BAN_AFTER + 1):
        assert not await policed.can_log_in("alice", password="wrong", source=OTHER)
    logins = policed.log.count("20137", "alice authenticated with password")
    assert await policed.can_log_in("alice", source=OTHER), "an allowed address is never banned"
    # The login's 20137 comes after any ban the refusals before it could have caused.
    policed.wait_event("20137", "alice authenticated with password", count=logins + 1)
    assert not policed.log.events("20257", OTHER)


async def test_deny_rule_refuses_the_address_whatever_the_credentials(policed: SshServer) -> None:
    assert not await policed.can_log_in("alice", source=THIRD)
    line = policed.wait_event("20005", f"from {THIRD}")
    assert "source_ip_filter" in line


async def test_policy_changes_apply_to_the_next_login_without_restart(ssh: SshServer) -> None:
    ssh.start(accounts=ACCOUNTS, policy=banning_policy())
    assert await ssh.can_log_in("alice")
    ssh.reload(accounts=ACCOUNTS, policy=banning_policy(deny_usernames="alice"))
    assert not await ssh.can_log_in("alice")
    ssh.wait_event("20136", "Login of alice")


async def test_a_service_without_policy_neither_denies_nor_bans(ssh: SshServer) -> None:
    ssh.start(
        accounts=ACCOUNTS, service="security_policy =", policy="source_ip_ban_after_count = 1"
    )
    assert not await ssh.can_log_in("alice", password="wrong")
    assert await ssh.can_log_in("admin"), "the default deny list does not apply"
    assert await ssh.can_log_in("alice")
    # The login's 20137 comes after any ban the refusal before it could have caused.
    ssh.wait_event("20137", "alice authenticated with password")
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
        await ssh.can_log_in(user, password=password)
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
    assert await legacy.can_log_in("alice"), "the disabled method would refuse alice"
    line = legacy.wait_event("20111", "off skipped for alice")
    assert line.endswith("disabled.")


async def test_deny_username_method_refuses_its_names(legacy: SshServer) -> None:
    assert not await legacy.can_log_in("mallory")
    line = legacy.wait_event("20136", "Login of mallory")
    assert "authentications/deny" in line
    assert not legacy.log.events("20255", "deny-username"), "a screen passes silently"


async def test_ip_time_ban_method_bans_through_the_shared_store(legacy: SshServer) -> None:
    await fail(legacy, 2, OTHER)
    line = legacy.wait_event("20257", f"Address {OTHER}")
    assert "authentications/ban" in line
    assert not await legacy.can_log_in("alice", source=OTHER)
    legacy.wait_event("20005", f"from {OTHER} blocked by authentications/ban")
    listed = legacy.ferryd.run("bans", "list", "--config-dir", legacy.config.path)
    assert "authentications/ban" in listed.stdout


async def test_anonymous_logs_in_with_any_password_as_the_mapped_account(
    legacy: SshServer,
) -> None:
    assert await legacy.can_log_in("Anonymous", password="anything@example.com", source=THIRD)
    line = legacy.wait_event("20137", "public-downloads authenticated")
    assert "anonymous method anon" in line
    assert legacy.home("public-downloads").is_dir(), "the session ran in the mapped home"
    assert await legacy.can_log_in("alice", source=THIRD), "other names go to the next method"
