"""PROXY protocol (v1 and v2) ahead of SSH connections, against a real ``ferryd serve``.

Each test plays the load balancer: it opens a TCP connection to the SSH service, writes a
header built with the ``proxy-protocol`` package naming some client, then runs asyncssh's
client over the same socket. Clients come from the documentation ranges (192.0.2.0/24,
198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32), each test with its own address or port so
that its events are told apart on a shared server; the balancer is 127.0.0.1, or 127.0.0.2
and 127.0.0.3 (Linux routes the whole 127/8 to the loopback interface).

Event ids: 30014 new connection (``via`` the balancer), 30077 refused by the PROXY layer,
30078 health probe, 30013 failed before login, 20137 login accepted, 20142 login rejected,
20005 address blocked by the policy, 20257 address banned, 30068 upload published, 20250
configuration applied.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
import time
from collections.abc import Callable

import asyncssh
import pytest
from identity_service import Answer, IdentityService
from proxyprotocol.result import ProxyResult, ProxyResultIPv4, ProxyResultIPv6, ProxyResultLocal
from proxyprotocol.tlv import ProxyProtocolTLV
from proxyprotocol.v1 import ProxyProtocolV1
from proxyprotocol.v2 import ProxyProtocolV2
from sshkit import PASSWORD, SshServer, account_section, client_key

BALANCER = "127.0.0.1"
OTHER_BALANCER = "127.0.0.2"
STRANGER = "127.0.0.3"
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

# Every handler line starts with the event id, as LogFile expects; this one shows the peer
# an event is about, which the messages of logins and uploads do not name.
PEERS_HANDLER = """
[event-handlers/peers]
type = local-file
path = log/peers.log
entry_content = {id} {account.peer.address}:{account.peer.port} {message}
"""
# What a balancer said besides the address: TLVs are a data member of 30014 only.
TLV_HANDLER = """
[event-handlers/balancer]
type = local-file
path = log/balancer.log
target = 30014
entry_content = {id} {account.peer.address} authority={proxy_tlvs.authority} \
unique_id={proxy_tlvs.unique_id}
"""
# The documented way to keep a balancer's probes out of a log (see source_addresses).
NO_PROBES_HANDLER = """
[event-handlers/no-probes]
type = local-file
path = log/no-probes.log
source_addresses = !127.0.0.1
entry_content = {id} {message}
"""


# -- headers and the balancer's side of a connection ----------------------------------------


def proxied_as(client: str, port: int, tlv: ProxyProtocolTLV | None = None) -> ProxyResult:
    """What a balancer knows of a connection: the client, the address it reached, TLVs."""
    address = ipaddress.ip_address(client)
    tlvs = tlv if tlv is not None else ProxyProtocolTLV()
    if isinstance(address, ipaddress.IPv4Address):
        return ProxyResultIPv4((address, port), (ipaddress.IPv4Address("192.0.2.10"), 22), tlv=tlvs)
    return ProxyResultIPv6((address, port), (ipaddress.IPv6Address("2001:db8::10"), 22), tlv=tlvs)


def v1(client: str, port: int) -> bytes:
    return ProxyProtocolV1().pack(proxied_as(client, port))


def v2(client: str, port: int, tlv: ProxyProtocolTLV | None = None) -> bytes:
    return ProxyProtocolV2().pack(proxied_as(client, port, tlv))


def balancer_socket(server: SshServer, source: str = BALANCER) -> socket.socket:
    return socket.create_connection(
        ("127.0.0.1", server.port), timeout=5, source_address=(source, 0)
    )


async def proxied(
    server: SshServer,
    header: bytes,
    user: str = "alice",
    *,
    password: str | None = None,
    source: str = BALANCER,
    pause: float = 0.0,
) -> asyncssh.SSHClientConnection:
    """An SSH connection through "the balancer" at ``source``: header first, then the client.

    With ``pause``, the header is written one byte at a time with that pause between bytes
    (and Nagle off, so each byte is its own TCP segment)."""
    sock = balancer_socket(server, source)
    try:
        if pause:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for byte in header:
                sock.sendall(bytes([byte]))
                await asyncio.sleep(pause)
        elif header:
            sock.sendall(header)
        keys = [] if password is not None else [client_key()]
        return await asyncssh.connect(
            sock=sock,
            username=user,
            password=password,
            client_keys=keys,
            known_hosts=None,
            preferred_auth="password" if password is not None else "publickey",
            connect_timeout=10,
        )
    except BaseException:
        sock.close()
        raise


async def logs_in(
    server: SshServer,
    header: bytes,
    user: str = "alice",
    *,
    password: str | None = None,
    source: str = BALANCER,
) -> bool:
    """True when the login through the balancer succeeds and SFTP works; False if refused."""
    try:
        async with (
            await proxied(server, header, user, password=password, source=source) as conn,
            conn.start_sftp_client() as sftp,
        ):
            await sftp.listdir(".")
        return True
    except asyncssh.PermissionDenied:
        return False


def answer(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """All the server sends until it closes the connection (b'' when it hangs up without a
    word); a server that keeps the connection open fails the test with a timeout."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def local_port(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def via(conn: asyncssh.SSHClientConnection, version: int) -> str:
    """How 30014 names the balancer: the address and port of the client side of our socket."""
    address, port = conn.get_extra_info("sockname")[:2]
    return f"via {address}:{port} (PROXY v{version})"


def peers_event(server: SshServer, event_id: str, containing: str) -> str:
    """The event's line in log/peers.log, which names the peer it is about."""
    return server.wait_event(event_id, containing, log=server.config.log("log/peers.log"))


async def assert_still_serving(server: SshServer, client: str, port: int) -> None:
    assert await logs_in(server, v2(client, port)), "the service stopped serving"


# -- servers -----------------------------------------------------------------------------

ACCOUNTS = account_section("alice") + "\n" + account_section("bob")


@pytest.fixture(scope="module")
def required(module_ssh: Callable[[str], SshServer]) -> SshServer:
    """``proxy_protocol = required`` behind the default trusted sources (loopback)."""
    server = module_ssh("pp-required")
    server.start(
        accounts=ACCOUNTS,
        service="proxy_protocol = required",
        extra=PEERS_HANDLER + TLV_HANDLER + NO_PROBES_HANDLER,
    )
    return server


@pytest.fixture(scope="module")
def untrusting(module_ssh: Callable[[str], SshServer]) -> SshServer:
    """Headers are required, but only from 10.9.0.0/16: the test's 127.0.0.1 is a stranger."""
    server = module_ssh("pp-untrusting")
    server.start(
        accounts=ACCOUNTS,
        service="proxy_protocol = required\nproxy_protocol_trusted_sources = 10.9.0.0/16",
    )
    return server


@pytest.fixture(scope="module")
def optional(module_ssh: Callable[[str], SshServer]) -> SshServer:
    """A migration: headers from 127.0.0.1 are used, connections without one are direct."""
    server = module_ssh("pp-optional")
    server.start(
        accounts=ACCOUNTS,
        service=f"proxy_protocol = optional\nproxy_protocol_trusted_sources = {BALANCER}/32",
        extra=PEERS_HANDLER,
    )
    return server


BAN_AFTER = 2
POLICY = f"""
    source_ip_ban_after_count = {BAN_AFTER}
    source_ip_ban_interval = 600
    failed_login_delay = 0
"""


@pytest.fixture(scope="module")
def policed(module_ssh: Callable[[str], SshServer]) -> SshServer:
    """Bans after two failures; ``partner`` may log in from 203.0.113.0/24 only. The header
    must arrive within half a second."""
    server = module_ssh("pp-policed")
    server.start(
        accounts=ACCOUNTS
        + "\n"
        + account_section("partner", options="source_ip_filter = allow 203.0.113.0/24"),
        service="proxy_protocol = required\nproxy_protocol_timeout = 0.5",
        policy=POLICY,
        extra=PEERS_HANDLER,
    )
    return server


# -- the real client, as the administrator sees it ----------------------------------------


async def test_v1_header_names_the_client_in_connection_login_and_file_events(
    required: SshServer,
) -> None:
    async with await proxied(required, v1("198.51.100.7", 40001)) as conn:
        balancer = via(conn, 1)
        async with (
            conn.start_sftp_client() as sftp,
            sftp.open("report-v1.csv", "wb") as remote,
        ):
            await remote.write(b"a,b\n1,2\n")

    line = required.wait_event("30014", "from 198.51.100.7:40001")
    assert line.endswith(f"New SSH connection from 198.51.100.7:40001 {balancer}.")
    peers_event(required, "20137", "198.51.100.7:40001 alice authenticated with ssh-key")
    upload = peers_event(required, "30068", "alice uploaded /report-v1.csv: 8 bytes")
    assert upload.startswith("30068 198.51.100.7:40001 "), upload
    assert (required.home("alice") / "report-v1.csv").read_bytes() == b"a,b\n1,2\n"
    assert not required.log.events("30014", "from 127.0.0.1:"), "the balancer is no client"


@pytest.mark.parametrize(
    ("client", "port"), [("192.0.2.21", 40021), ("2001:db8::7", 40022)], ids=["tcp4", "tcp6"]
)
async def test_v2_header_with_tlvs_logs_in_and_its_tlvs_reach_handler_templates(
    required: SshServer, client: str, port: int
) -> None:
    unique = f"req-{port}".encode()
    tlv = ProxyProtocolTLV(authority="sftp.example.com", unique_id=unique)
    async with await proxied(required, v2(client, port, tlv)) as conn:
        balancer = via(conn, 2)
        async with conn.start_sftp_client() as sftp:
            assert await sftp.realpath(".") == "/"

    line = required.wait_event("30014", f"from {client}:{port} ")
    assert line.endswith(f"New SSH connection from {client}:{port} {balancer}.")
    peers_event(required, "20137", f"{client}:{port} alice authenticated")
    balancer_log = required.config.log("log/balancer.log")
    recorded = required.wait_event("30014", f" {client} ", log=balancer_log)
    assert recorded == f"30014 {client} authority=sftp.example.com unique_id={unique.hex()}"


async def test_v2_local_health_probe_is_closed_quietly_and_the_service_keeps_serving(
    required: SshServer,
) -> None:
    connections = required.log.count("30014")
    with balancer_socket(required) as probe:
        port = local_port(probe)
        probe.sendall(ProxyProtocolV2().pack(ProxyResultLocal()))
        assert answer(probe) == b"", "a health probe gets no SSH greeting"

    line = required.wait_event("30078", f"from 127.0.0.1:{port} ")
    assert line.endswith(f"Health probe (PROXY v2 LOCAL) from 127.0.0.1:{port} closed.")
    assert required.log.count("30014") == connections, "a probe is not a connection"
    assert not required.log.events("30077", f"127.0.0.1:{port} ")
    await assert_still_serving(required, "192.0.2.30", 40030)


# -- refusals --------------------------------------------------------------------------------


def test_header_from_an_untrusted_source_is_refused_before_any_ssh_byte(
    untrusting: SshServer,
) -> None:
    with balancer_socket(untrusting) as sock:
        port = local_port(sock)
        sock.sendall(v1("198.51.100.40", 40040) + b"SSH-2.0-OpenSSH_9.6\r\n")
        data = answer(sock)
    assert b"SSH-2.0" not in data and data == b""

    line = untrusting.wait_event("30077", f"from 127.0.0.1:{port} ")
    assert line.endswith(
        f"Connection from 127.0.0.1:{port} refused: 127.0.0.1 is not in "
        "proxy_protocol_trusted_sources (a header is required)."
    )
    assert untrusting.log.count("30014") == 0
    assert not untrusting.log.events("30077", "198.51.100.40"), "the header was not believed"


def test_required_mode_refuses_a_plain_ssh_client(required: SshServer) -> None:
    result = required.sftp("alice", ["ls"], timeout=20)
    assert result.returncode == 255, result.stdout + result.stderr
    # OpenSSH fails while waiting for the server's greeting, which never comes.
    assert "kex_exchange_identification" in result.stderr, result.stderr

    line = required.wait_event("30077", "no PROXY protocol header")
    assert "Connection from 127.0.0.1:" in line
    assert line.endswith("refused: no PROXY protocol header (proxy_protocol = required).")
    assert not required.log.events("20137", "127.0.0.1:"), "no login from the socket's address"


async def test_plain_asyncssh_client_fails_clearly_in_required_mode(required: SshServer) -> None:
    refused = required.log.count("30077", "no PROXY protocol header")
    with pytest.raises((asyncssh.ConnectionLost, asyncssh.DisconnectError, ConnectionError)):
        async with await required.connect("alice", connect_timeout=10):
            pass
    required.wait_event("30077", "no PROXY protocol header", count=refused + 1)


def test_header_that_does_not_arrive_in_time_is_refused_and_the_socket_closed(
    policed: SshServer,
) -> None:
    header = v2("198.51.100.60", 40060)
    with balancer_socket(policed) as sock:
        port = local_port(sock)
        started = time.monotonic()
        sock.sendall(header[: len(header) // 2])
        data = answer(sock, timeout=5)
        elapsed = time.monotonic() - started
    assert data == b""
    assert 0.4 <= elapsed < 3.0, f"closed after {elapsed:.2f} s instead of about 0.5 s"

    line = policed.wait_event("30077", f"from 127.0.0.1:{port} ")
    assert line.endswith(
        f"Connection from 127.0.0.1:{port} refused: no complete PROXY header within 0.5 s."
    )


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        (b"PROXY TCP4 999.1.1.1 127.0.0.1 40070 22\r\n", "999"),
        (V2_SIGNATURE + b"\xff\xff\x00\x04junk", "version"),
        # Version 2 PROXY over TCP4, but a 4-byte body where the addresses need 12.
        (V2_SIGNATURE + b"\x21\x11\x00\x04junk", "12 bytes"),
    ],
    ids=["v1-bad-address", "v2-bad-version", "v2-too-short-for-its-addresses"],
)
async def test_malformed_header_is_refused(required: SshServer, header: bytes, detail: str) -> None:
    with balancer_socket(required) as sock:
        port = local_port(sock)
        sock.sendall(header + b"SSH-2.0-OpenSSH_9.6\r\n")
        assert answer(sock) == b""

    line = required.wait_event("30077", f"from 127.0.0.1:{port} ")
    assert "refused: malformed PROXY header: " in line
    assert detail in line
    await assert_still_serving(required, "192.0.2.70", 40071)


async def test_connection_reset_in_the_middle_of_the_header_is_reported(
    required: SshServer,
) -> None:
    sock = balancer_socket(required)
    port = local_port(sock)
    sock.sendall(V2_SIGNATURE + b"\x21")
    await asyncio.sleep(0.3)  # on purpose: the server is now waiting for the rest
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # with a zero linger time: a reset, as a balancer giving up sends

    refused = required.wait_event("30077", f"from 127.0.0.1:{port} ")
    assert "cannot read the PROXY header" in refused
    # The listener is not disturbed: a health probe right after is closed as usual.
    with balancer_socket(required) as probe:
        later = local_port(probe)
        probe.sendall(ProxyProtocolV2().pack(ProxyResultLocal()))
        assert answer(probe) == b""
    required.wait_event("30078", f"from 127.0.0.1:{later} ")


async def test_source_addresses_filter_keeps_health_probes_out_of_a_log(
    required: SshServer,
) -> None:
    with balancer_socket(required) as probe:
        port = local_port(probe)
        probe.sendall(ProxyProtocolV2().pack(ProxyResultLocal()))
        assert answer(probe) == b""
    required.wait_event("30078", f"from 127.0.0.1:{port} ")
    assert await logs_in(required, v2("192.0.2.35", 40035))
    # The login's 30014 (the real client, so not filtered) follows the probe in that log.
    no_probes = required.config.log("log/no-probes.log")
    required.wait_event("30014", "from 192.0.2.35:40035 ", log=no_probes)
    probes = no_probes.events("30078", f"127.0.0.1:{port} ")
    assert not probes, "the probe went through `source_addresses = !127.0.0.1`"


# -- optional mode ---------------------------------------------------------------------------


async def test_optional_mode_serves_direct_clients_and_trusted_headers_only(
    optional: SshServer,
) -> None:
    for source in (BALANCER, OTHER_BALANCER):
        async with await optional.connect("alice", local_addr=(source, 0)) as conn:
            port = conn.get_extra_info("sockname")[1]
            async with conn.start_sftp_client() as sftp:
                await sftp.listdir(".")
        line = optional.wait_event("30014", f"from {source}:{port}.")
        assert line.endswith(f"New SSH connection from {source}:{port}."), "a direct client"
        peers_event(optional, "20137", f"{source}:{port} alice authenticated")

    assert await logs_in(optional, v1("192.0.2.80", 40080))
    line = optional.wait_event("30014", "from 192.0.2.80:40080 ")
    assert line.endswith("(PROXY v1).") and " via 127.0.0.1:" in line
    peers_event(optional, "20137", "192.0.2.80:40080 alice authenticated")

    with balancer_socket(optional, STRANGER) as sock:
        port = local_port(sock)
        sock.sendall(v2("192.0.2.81", 40081) + b"SSH-2.0-OpenSSH_9.6\r\n")
        assert answer(sock) == b""
    line = optional.wait_event("30077", f"from {STRANGER}:{port} ")
    assert line.endswith(
        f"refused: PROXY header from {STRANGER}, which is not in proxy_protocol_trusted_sources."
    )
    assert not optional.log.events("30014", "192.0.2.81")


def test_optional_mode_refuses_a_partial_header_from_an_untrusted_source_at_once(
    optional: SshServer,
) -> None:
    """Three bytes of a signature decide it: no waiting (or polling) until the timeout."""
    with balancer_socket(optional, STRANGER) as sock:
        port = local_port(sock)
        sock.sendall(b"PRO")
        started = time.monotonic()
        assert answer(sock) == b""
        assert time.monotonic() - started < 1.0, "held until proxy_protocol_timeout"
    optional.wait_event("30077", f"from {STRANGER}:{port} ")


# -- the real address governs security -------------------------------------------------------


async def test_bans_and_source_filters_judge_the_address_in_the_header(
    policed: SshServer,
) -> None:
    for port in range(40090, 40090 + BAN_AFTER):
        header = v2("198.51.100.7", port)
        assert not await logs_in(policed, header, password="wrong password")
    ban = policed.wait_event("20257", "Address 198.51.100.7 banned")
    assert f"after {BAN_AFTER} failed logins" in ban

    assert not await logs_in(policed, v2("198.51.100.7", 40099), password=PASSWORD)
    blocked = policed.wait_event("20005", "Login of alice from 198.51.100.7 blocked")
    assert "banned for" in blocked
    assert await logs_in(policed, v2("198.51.100.8", 40100), password=PASSWORD), (
        "another client behind the same balancer is not banned"
    )
    listed = policed.ferryd.run("bans", "list", "--config-dir", policed.config.path)
    assert listed.returncode == 0, listed.stderr
    rows = listed.stdout.splitlines()
    assert any(row.startswith("198.51.100.7 ") for row in rows), listed.stdout
    assert not any(row.startswith(BALANCER) for row in rows), "the balancer is not banned"

    assert await logs_in(policed, v1("203.0.113.9", 40101), "partner")
    peers_event(policed, "20137", "203.0.113.9:40101 partner authenticated")
    assert not await logs_in(policed, v1("198.51.100.9", 40102), "partner")
    refused = policed.wait_event("20142", "Login of partner with ssh-key rejected")
    assert "source address 198.51.100.9 refused by source_ip_filter" in refused


# -- how the header travels --------------------------------------------------------------


async def test_header_split_across_many_writes_still_logs_in(required: SshServer) -> None:
    tlv = ProxyProtocolTLV(authority="split.example.com")
    header = v2("192.0.2.100", 40110, tlv)
    async with await proxied(required, header, pause=0.005) as conn:
        balancer = via(conn, 2)
        async with conn.start_sftp_client() as sftp, sftp.open("split.txt", "wb") as remote:
            await remote.write(b"whole\n")
    line = required.wait_event("30014", "from 192.0.2.100:40110 ")
    assert line.endswith(f"{balancer}.")
    peers_event(required, "30068", "alice uploaded /split.txt: 6 bytes")
    required.wait_event(
        "30014", "authority=split.example.com", log=required.config.log("log/balancer.log")
    )


async def test_off_mode_does_not_interpret_headers(ssh: SshServer) -> None:
    ssh.start(accounts=ACCOUNTS)
    with balancer_socket(ssh) as sock:
        port = local_port(sock)
        sock.sendall(v1("198.51.100.120", 40120))
        # The server answers a version line that is no SSH with a disconnect, or a reset.
        with pytest.raises((asyncssh.Error, ConnectionError)):
            async with asyncssh.connect(sock=sock, username="alice", known_hosts=None):
                pass
    line = ssh.wait_event("30014", f"from 127.0.0.1:{port}")
    assert line.endswith(f"New SSH connection from 127.0.0.1:{port}."), "the socket's address"
    line = ssh.wait_event("30013", f"SSH connection from 127.0.0.1:{port} ")
    assert "failed before login" in line
    assert not ssh.log.events("30014", "198.51.100.120")
    assert not ssh.log.events("30077")
    async with await ssh.connect("alice") as conn, conn.start_sftp_client() as sftp:
        await sftp.listdir(".")


async def test_switching_to_required_applies_to_new_connections_only(ssh: SshServer) -> None:
    ssh.start(accounts=ACCOUNTS, extra=PEERS_HANDLER)
    async with await ssh.connect("alice") as before, before.start_sftp_client() as sftp:
        await sftp.listdir(".")
        ssh.reload(accounts=ACCOUNTS, service="proxy_protocol = required", extra=PEERS_HANDLER)
        assert ssh.log.count("20012") == 0, "the service was restarted, not reconfigured"

        with pytest.raises((asyncssh.ConnectionLost, asyncssh.DisconnectError, ConnectionError)):
            async with await ssh.connect("bob", connect_timeout=10):
                pass
        ssh.wait_event("30077", "no PROXY protocol header")
        assert await logs_in(ssh, v2("203.0.113.130", 40130), "bob")
        peers_event(ssh, "20137", "203.0.113.130:40130 bob authenticated")

        async with sftp.open("after-reload.txt", "wb") as remote:
            await remote.write(b"still here\n")
        assert "after-reload.txt" in await sftp.listdir(".")
    assert (ssh.home("alice") / "after-reload.txt").read_bytes() == b"still here\n"


async def test_http_authentication_is_told_the_real_client_address(
    ssh: SshServer,
) -> None:
    with IdentityService() as identity:
        identity.answer("rita", Answer(204))
        ssh.start(
            service="proxy_protocol = required\nauthentications = http-main",
            extra=f"""
            [authentications/http-main]
            type = http
            url = {identity.url}
            """,
        )
        async with await proxied(ssh, v2("198.51.100.44", 40444), "rita", password="secret"):
            pass
        (request,) = identity.requests_for("rita")
        peer = request.credentials["peer"]
        assert (peer["address"], peer["port"]) == ("198.51.100.44", 40444)
