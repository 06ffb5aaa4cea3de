"""The SSH service over time: limits, idle sessions, live reconfiguration, refused
configurations and stopping, with real clients against ``ferryd serve``.

Event ids: 20010 configuration refused, 20012 component restarted, 20137 login accepted,
20142 login rejected, 20250 configuration applied, 30013 connection failed before login,
30015 connection closed, 30016 idle timeout, 30051 too many connections, 30076 listening.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from typing import TYPE_CHECKING

import asyncssh
import pytest
from sshkit import PASSWORD, account_section, client_key, free_port, other_key

from ferryd.auth.passwords import hash_password

if TYPE_CHECKING:
    from conftest import Ferryd
    from sshkit import SshServer

NEW_PASSWORD = "a new password for alice"
EXPLICIT_LIST = "curve25519-sha256, aes128-gcm@openssh.com, hmac-sha2-256-etm@openssh.com"


def reload_text(ssh: SshServer, text: str) -> str:
    """Write ``text`` as server.ini, SIGHUP, and return the 20250 or 20010 line that follows."""
    assert ssh.process is not None
    log = ssh.log
    before = log.count("20250") + log.count("20010")
    ssh.config.write(text)
    ssh.process.hup()
    ssh.process.wait_until(
        lambda: log.count("20250") + log.count("20010") > before, "the reload to be answered"
    )
    answers = [line for line in log.lines() if line.split(" ", 1)[0] in ("20250", "20010")]
    return answers[-1]


async def assert_sftp_works(conn: asyncssh.SSHClientConnection, name: str) -> None:
    """List the home and upload a small file through a new SFTP session on ``conn``."""
    async with conn.start_sftp_client() as sftp:
        await sftp.listdir(".")
        async with sftp.open(name, "wb") as remote:
            await remote.write(b"still here\n")
        assert name in await sftp.listdir(".")


def local_port(conn: asyncssh.SSHClientConnection) -> int:
    port: int = conn.get_extra_info("sockname")[1]
    return port


# -- limits ---------------------------------------------------------------------------------------


async def test_connection_over_the_limit_is_refused_until_one_closes(ssh: SshServer) -> None:
    ssh.start(accounts=account_section("alice"), service="maximum_concurrent_connections = 2")
    first = await ssh.connect("alice")
    async with await ssh.connect("alice") as second:
        with pytest.raises((asyncssh.Error, OSError)):
            async with await ssh.connect("alice", password=PASSWORD):
                pass
        refused = ssh.wait_event("30051")
        assert refused.endswith(": 2 concurrent connections reached.")
        assert ssh.log.count("20137") == 2, "the refused connection got as far as a login"

        first_port = local_port(first)
        first.close()
        await first.wait_closed()
        ssh.wait_event("30015", f":{first_port} closed")

        async with await ssh.connect("alice", password=PASSWORD) as third:
            await assert_sftp_works(third, "third.txt")
        await assert_sftp_works(second, "second.txt")
    assert ssh.log.count("30051") == 1


async def test_idle_connection_is_closed_while_a_busy_one_stays_open(ssh: SshServer) -> None:
    ssh.start(accounts=account_section("alice"), service="idle_connection_timeout = 1")
    loop = asyncio.get_running_loop()
    idle = await ssh.connect("alice", password=PASSWORD)
    idle_port = local_port(idle)
    logged_in = loop.time()
    closed_at: list[float] = []
    idle_closed = asyncio.ensure_future(idle.wait_closed())
    idle_closed.add_done_callback(lambda _: closed_at.append(loop.time()))

    async with await ssh.connect("alice") as busy, busy.start_sftp_client() as sftp:
        while loop.time() - logged_in < 2.0:
            await sftp.listdir(".")
            await asyncio.sleep(0.3)
        await asyncio.wait_for(idle_closed, timeout=3.0)
        closed_after = closed_at[0] - logged_in
        await sftp.listdir(".")  # the busy one is still served after more than 2 s
        busy_port = local_port(busy)

    assert 0.9 <= closed_after <= 2.5, f"idle connection closed after {closed_after:.2f} s"
    idle_event = ssh.wait_event("30016")
    assert re.fullmatch(
        r"30016 SSH connection of alice closed after 1(\.0)? idle seconds\.", idle_event
    )
    assert ssh.log.count("30016") == 1
    closed = ssh.wait_event("30015", f":{idle_port} closed")
    assert closed.endswith("(idle for 1 seconds).")
    assert ssh.log.count("30015", "(idle for") == 1
    ssh.wait_event("30015", f":{busy_port} closed")


async def test_connection_that_never_logs_in_is_closed_after_the_idle_timeout(
    ssh: SshServer,
) -> None:
    ssh.start(accounts=account_section("alice"), service="idle_connection_timeout = 1")
    reader, writer = await asyncio.open_connection("127.0.0.1", ssh.port)
    port = writer.get_extra_info("sockname")[1]
    try:
        greeting = await asyncio.wait_for(reader.readline(), timeout=3.0)
        assert greeting.startswith(b"SSH-2.0-ferryd")
        # The client never answers; reading to the end returns once ferryd hangs up.
        await asyncio.wait_for(reader.read(), timeout=4.0)
    finally:
        writer.close()
    failed = ssh.wait_event("30013", f"127.0.0.1:{port} failed before login")
    assert failed.endswith(": Login timeout expired"), failed
    ssh.wait_event("30015", f"127.0.0.1:{port} closed")


# -- account changes while sessions are open ------------------------------------------------------


async def test_new_password_applies_to_the_next_login_and_open_sessions_keep_working(
    ssh: SshServer,
) -> None:
    ssh.start(accounts=account_section("alice"))
    async with (
        await ssh.connect("alice", password=PASSWORD) as before,
        before.start_sftp_client() as sftp,
    ):
        await sftp.listdir(".")

        ssh.reload(accounts=account_section("alice", password=hash_password(NEW_PASSWORD)))
        assert ssh.log.count("20010") == 0, ssh.log.events("20010")

        async with await ssh.connect("alice", password=NEW_PASSWORD) as after:
            await assert_sftp_works(after, "after.txt")
        with pytest.raises(asyncssh.PermissionDenied):
            await ssh.connect("alice", password=PASSWORD)
        rejected = ssh.wait_event("20142", "Login of alice with password")
        assert rejected.endswith(": invalid password")

        async with sftp.open("before.txt", "wb") as remote:
            await remote.write(b"written after the reload\n")
        assert sorted(await sftp.listdir(".")) == [".", "..", "after.txt", "before.txt"]
    assert (ssh.home("alice") / "before.txt").read_bytes() == b"written after the reload\n"


async def test_replaced_key_applies_to_the_next_login_and_open_sessions_keep_working(
    ssh: SshServer,
) -> None:
    ssh.start(accounts=account_section("alice"))
    async with await ssh.connect("alice", key=client_key()) as before:
        ssh.reload(accounts=account_section("alice", key=other_key()))
        assert ssh.log.count("20010") == 0, ssh.log.events("20010")

        async with await ssh.connect("alice", key=other_key()) as after:
            await assert_sftp_works(after, "after.txt")
        with pytest.raises(asyncssh.PermissionDenied):
            await ssh.connect("alice", key=client_key())
        rejected = ssh.wait_event("20142", "Login of alice with ssh-key")
        assert rejected.endswith(": public key not authorized")

        await assert_sftp_works(before, "before.txt")


# -- service changes ------------------------------------------------------------------------------


async def test_service_options_change_for_new_connections_without_a_restart(
    ssh: SshServer,
) -> None:
    ssh.start(accounts=account_section("alice"))
    banners: list[str] = []

    class BannerClient(asyncssh.SSHClient):
        def auth_banner_received(self, msg: str, lang: str) -> None:
            banners.append(msg)

    async with await ssh.connect("alice") as kept, kept.start_sftp_client() as sftp:
        # 'secure' offers aes256-ctr.
        async with await ssh.connect("alice", encryption_algs=["aes256-ctr"]):
            pass

        ssh.reload(
            accounts=account_section("alice"),
            service=f"""
            ssh_cipher_list = {EXPLICIT_LIST}
            maximum_concurrent_connections = 2
            before_login_message = Changed banner.
            """,
        )
        applied = ssh.log.events("20250")[-1]
        assert "1 reconfigured" in applied, applied
        assert ssh.log.count("20012") == 0, ssh.log.events("20012")
        assert ssh.log.count("30076") == 1, "the service was bound again"

        # The session opened before the change is still served.
        await sftp.listdir(".")
        async with sftp.open("kept.txt", "wb") as remote:
            await remote.write(b"kept\n")

        closed, failed = ssh.log.count("30015"), ssh.log.count("30013")
        # Both ends weigh the other's KEXINIT at once, each in a task of its own. The one
        # that finds no common cipher first disconnects; the other may see only the
        # closed socket and report "Connection lost". One of them names the cipher.
        with pytest.raises((asyncssh.KeyExchangeFailed, asyncssh.ConnectionLost)) as refused:
            await ssh.connect("alice", encryption_algs=["aes256-ctr"])
        server_said = ssh.wait_event("30013", count=failed + 1)
        assert "No matching encryption algorithm found" in f"{refused.value} {server_said}"
        ssh.wait_event("30015", count=closed + 1)

        async with await ssh.connect("alice", client_factory=BannerClient) as second:
            assert banners == ["Changed banner.\n"]
            assert second.get_extra_info("send_cipher") == "aes128-gcm@openssh.com"
            with pytest.raises((asyncssh.Error, OSError)):
                await ssh.connect("alice")
            ssh.wait_event("30051", "2 concurrent connections reached")
    assert (ssh.home("alice") / "kept.txt").read_bytes() == b"kept\n"


async def test_changing_the_port_moves_the_listener_and_open_sessions_carry_on(
    ssh: SshServer,
) -> None:
    accounts = account_section("alice")
    ssh.start(accounts=accounts)
    old, new = ssh.port, free_port()

    async with await ssh.connect("alice") as kept:
        applied = reload_text(ssh, ssh.ini(accounts=accounts).replace("port = 0", f"port = {new}"))

        assert applied.startswith("20250 "), applied
        listening = ssh.wait_event("30076", f":{new}.")
        assert listening == f"30076 SSH service sftp listening on 127.0.0.1:{new}."
        async with await ssh.connect("alice", password=PASSWORD, port=new) as conn:
            await assert_sftp_works(conn, "moved.txt")
        with pytest.raises(OSError):
            await ssh.connect("alice", password=PASSWORD, port=old)
        await assert_sftp_works(kept, "kept.txt")


async def test_port_change_to_a_busy_port_keeps_the_old_listener_and_open_sessions(
    ssh: SshServer,
) -> None:
    accounts = account_section("alice")
    ssh.config.write(ssh.ini(accounts=accounts).replace("port = 0", f"port = {free_port()}"))
    ssh.start()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        async with await ssh.connect("alice") as kept, kept.start_sftp_client() as sftp:
            await sftp.listdir(".")

            reload_text(ssh, ssh.ini(accounts=accounts).replace("port = 0", f"port = {busy}"))

            failed = ssh.wait_event("20158", "services ssh sftp failed to start")
            assert "address already in use" in failed.lower()
            assert f"cannot listen on 127.0.0.1:{busy}: " in failed, "names what it could not bind"
            async with await ssh.connect("alice", password=PASSWORD) as new:
                await assert_sftp_works(new, "new.txt")
            assert ssh.log.count("30015", "(the service is stopping)") == 0
            await sftp.listdir(".")


# -- refused configurations -----------------------------------------------------------------------


def test_check_reports_an_unknown_ssh_algorithm_with_file_line_section_and_option(
    ssh: SshServer, ferryd: Ferryd
) -> None:
    text = ssh.write(
        accounts=account_section("alice"), service="ssh_cipher_list = not-an-algorithm"
    )

    result = ferryd.run("check", "--config-dir", ssh.config.path)

    assert result.returncode == 1
    line = ssh.config.line_of(text, "ssh_cipher_list = not-an-algorithm")
    assert ferryd.output_lines(result) == [
        f"{ssh.config.ini}:{line}: [services/sftp] ssh_cipher_list: unknown SSH algorithm "
        "'not-an-algorithm'; use 'secure', 'all' or names such as curve25519-sha256, "
        "aes128-gcm@openssh.com, hmac-sha2-256-etm@openssh.com"
    ]


async def test_reload_with_an_unknown_ssh_algorithm_is_refused_and_the_service_keeps_serving(
    ssh: SshServer,
) -> None:
    ssh.start(accounts=account_section("alice"))
    async with await ssh.connect("alice") as kept:
        ssh.reload(accounts=account_section("alice"), service="ssh_cipher_list = not-an-algorithm")

        line = ssh.config.line_of(ssh.config.ini.read_text(), "ssh_cipher_list = ")
        refused = ssh.wait_event("20010")
        assert refused.startswith(
            "20010 Configuration refused, the running configuration is kept: "
            f"{ssh.config.ini}:{line}: [services/sftp] ssh_cipher_list: unknown SSH algorithm "
            "'not-an-algorithm'"
        ), refused
        assert ssh.log.count("20250") == 1
        await assert_sftp_works(kept, "kept.txt")
        # New connections still get the old 'secure' list, which offers aes256-ctr.
        async with await ssh.connect("alice", encryption_algs=["aes256-ctr"]) as new:
            await assert_sftp_works(new, "new.txt")


def missing_host_key(ssh: SshServer, where: str) -> int:
    """Write a server.ini naming a host key file that does not exist, in [server] (which the
    service inherits) or in the service; return the line the problem should point at."""
    text = ssh.ini(accounts=account_section("alice"))
    if where == "server":
        text = text.replace("ssh_server_keys = ssh_host_ed25519_key", "ssh_server_keys = gone_key")
        needle = "[services/sftp]"
    else:
        text = text.replace("port = 0\n", "port = 0\nssh_server_keys = gone_key\n")
        needle = "ssh_server_keys = gone_key"
    ssh.config.write(text)
    return ssh.config.line_of(text, needle)


@pytest.mark.parametrize("where", ["server", "service"])
def test_check_refuses_a_missing_host_key_file_and_names_it(
    ssh: SshServer, ferryd: Ferryd, where: str
) -> None:
    line = missing_host_key(ssh, where)

    result = ferryd.run("check", "--config-dir", ssh.config.path)

    assert result.returncode == 1
    lines = ferryd.output_lines(result)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{ssh.config.ini}:{line}: "), lines[0]
    assert f"cannot load host key {ssh.config.path / 'gone_key'}: " in lines[0]
    assert "No such file or directory" in lines[0]


@pytest.mark.parametrize("where", ["server", "service"])
def test_check_names_section_and_option_of_a_missing_host_key(
    ssh: SshServer, ferryd: Ferryd, where: str
) -> None:
    line = missing_host_key(ssh, where)

    result = ferryd.run("check", "--config-dir", ssh.config.path)

    assert ferryd.output_lines(result)[0].startswith(
        f"{ssh.config.ini}:{line}: [services/sftp] ssh_server_keys: cannot load host key "
        f"{ssh.config.path / 'gone_key'}: "
    ), ferryd.output_lines(result)


@pytest.mark.parametrize("scp", ["no", "yes"], ids=["scp-no", "scp-yes"])
async def test_sftp_no_refuses_the_subsystem_but_logins_still_succeed(
    ssh: SshServer, scp: str
) -> None:
    ssh.start(accounts=account_section("alice"), service=f"sftp = no\nscp = {scp}")

    async with await ssh.connect("alice", password=PASSWORD) as conn:
        ssh.wait_event("20137", "alice authenticated with password")
        # With scp = no the channel is refused; with scp = yes ferryd drops the connection.
        with pytest.raises((asyncssh.Error, OSError)):
            await conn.start_sftp_client()

    openssh = ssh.sftp("alice", ["ls"])
    assert openssh.returncode != 0
    assert "sftp>" not in openssh.stdout
    ssh.wait_event("20137", "alice authenticated with ssh-key")
    assert ssh.log.count("30011") == 0


# -- stopping -------------------------------------------------------------------------------------


async def test_sigterm_with_an_open_session_exits_0_within_the_drain_timeout(
    ssh: SshServer,
) -> None:
    text = ssh.ini(accounts=account_section("alice"))
    ssh.config.write(text.replace("[server]\n", "[server]\ndrain_timeout = 2\n"))
    process = ssh.start()
    conn = await ssh.connect("alice", password=PASSWORD)
    sftp = await conn.start_sftp_client()
    await sftp.listdir(".")
    port = local_port(conn)

    started = time.monotonic()
    status = await asyncio.to_thread(process.stop)
    elapsed = time.monotonic() - started

    assert status == 0, process.diagnostics()
    assert elapsed < 2 + 3, f"ferryd took {elapsed:.1f} s to stop with drain_timeout = 2"
    await asyncio.wait_for(conn.wait_closed(), timeout=5)
    closed = ssh.log.events("30015", f"127.0.0.1:{port} closed")
    assert len(closed) == 1, ssh.log.lines()
    assert closed[0].endswith("(the service is stopping)."), closed[0]
    assert ssh.log.count("30012", "SFTP session of alice ended") == 1


def test_a_service_whose_port_is_taken_at_start_names_the_address(ssh: SshServer) -> None:
    """The bind error alone ("Address already in use") does not say which listener failed;
    the refused start names the address and port, in the event and on standard error."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        ssh.write(
            accounts=account_section("alice"),
            extra=f"[services/second]\ntype = ssh\naddress = 127.0.0.1\nport = {busy}\n",
        )
        process = ssh.ferryd.serve(ssh.config)
        assert process.wait_exit() == 1, process.diagnostics()
    said = f"cannot listen on 127.0.0.1:{busy}: Address already in use"
    assert said in process.stderr(), process.diagnostics()
    assert any(said in line for line in ssh.log.events("20158")), process.diagnostics()
