"""The ``http`` authentication method against a real identity service (reference 3.3).

One ``ferryd serve`` is shared by the module. Its SSH services differ only in their method
list, so one process covers every case: ``sftp`` asks ``http-main`` then the application
accounts, ``only-http`` asks ``http-main`` alone, ``failover`` and ``suspend`` ask a method
whose first URL is down or answers 500, ``tls`` and ``untrusted`` ask an HTTPS service with a
trusted and an untrusted CA. The identity services answer per username and record every
request, so each test uses its own name. Event ids: 20081 nobody knows the account, 20137
accepted, 20142 rejected, 20158 failed to start, 20255 unknown (next method), 20256 could not
decide, 20260 URL suspended.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from identity_service import (
    PATH,
    Answer,
    IdentityService,
    Received,
    down_url,
)
from sshkit import PASSWORD, SshServer, account_section, client_key, public_line
from testpki import CertificateAuthority

BASIC_USER = "ferryd"
BASIC_PASSWORD = "basic-secret-9"
API_KEY = "key-0123"
TIMEOUT = 2  # http-main's timeout, seconds
SERVER_UUID = "single-server-uuid"  # sshkit's [server] keeps the default uuid


@dataclass
class Setup:
    ssh: SshServer
    root: Path
    identity: IdentityService  # plain HTTP, answers http-main and the second URLs
    broken: IdentityService  # answers 500 to everyone
    secure: IdentityService  # HTTPS, certificate from the trusted CA
    down: str  # a URL nothing listens on

    def parts(self, *, api_key: str = API_KEY, at_start: bool = False) -> dict[str, str]:
        """The server.ini of the module (as sshkit ``ini`` parts); reload tests vary it."""
        extra = GROUPS + methods(self, api_key) + SERVICES
        if at_start:
            extra += AT_START.format(down=self.down)
        return {
            "service": "authentications = http-main, DEFAULT-AUTHENTICATION",
            "accounts": account_section("app-user"),
            "extra": extra,
        }


GROUPS = """
[groups/partners]
name = partners

[groups/keys-only]
name = keys-only
required_credentials = ssh-key
"""


def methods(setup: Setup, api_key: str) -> str:
    return f"""
[authentications/http-main]
type = http
url = {setup.identity.url}
timeout = {TIMEOUT}
username = {BASIC_USER}
password = {BASIC_PASSWORD}
headers = X-Api-Key: {api_key}
    Authorization: Bearer replaced-by-basic
test_at_start = yes

[authentications/http-down-first]
type = http
url = {setup.down}, {setup.identity.url}
timeout = {TIMEOUT}

[authentications/http-broken-first]
type = http
url = {setup.broken.url}, {setup.identity.url}
timeout = {TIMEOUT}

[authentications/http-tls]
type = http
url = {setup.secure.url}
timeout = {TIMEOUT}
tls_trusted_certificates = trusted-ca.pem

[authentications/http-untrusted]
type = http
url = {setup.secure.url}
timeout = {TIMEOUT}
tls_trusted_certificates = other-ca.pem
"""


def _service(name: str, method: str) -> str:
    return f"""
[services/{name}]
type = ssh
address = 127.0.0.1
port = 0
authentications = {method}
"""


SERVICES = "".join(
    _service(name, method)
    for name, method in [
        ("only-http", "http-main"),
        ("failover", "http-down-first"),
        ("suspend", "http-broken-first"),
        ("tls", "http-tls"),
        ("untrusted", "http-untrusted"),
    ]
)

AT_START = """
[authentications/http-at-start]
type = http
url = {down}
test_at_start = yes
""" + _service("at-start", "http-at-start")


@pytest.fixture(scope="module")
def setup(module_ssh: Callable[[str], SshServer]) -> Iterator[Setup]:
    ssh = module_ssh("auth-http")
    root = ssh.root
    trusted, other = CertificateAuthority.create("trusted"), CertificateAuthority.create("other")
    conf = ssh.config.path
    conf.mkdir(parents=True, exist_ok=True)
    trusted.write(conf / "trusted-ca.pem")
    other.write(conf / "other-ca.pem")
    services = [
        IdentityService(),
        IdentityService(default=Answer(500, "database unavailable")),
        IdentityService(tls=trusted.server_context(root / "tls")),
    ]
    try:
        for service in services:
            service.start()
        identity, broken, secure = services
        result = Setup(ssh, root, identity, broken, secure, down_url())
        ssh.start(**result.parts())
        ssh.port = ssh.service_port("sftp")  # for the OpenSSH client
        yield result
    finally:
        for service in services:
            service.stop()


# -- helpers ----------------------------------------------------------------------------------


async def connect(
    setup: Setup, user: str, *, service: str = "sftp"
) -> asyncssh.SSHClientConnection:
    """A password login (asyncssh) to one of the module's SSH services."""
    port = setup.ssh.service_port(service)
    return await setup.ssh.connect(user, password=PASSWORD, port=port)


async def refused(setup: Setup, user: str, *, service: str = "sftp") -> float:
    """Assert the password login is refused; return how long the refusal took."""
    started = time.monotonic()
    with pytest.raises(asyncssh.PermissionDenied):
        async with await connect(setup, user, service=service):
            pass
    return time.monotonic() - started


def no_secret_logged(setup: Setup) -> None:
    """Neither the login's password nor the Basic one is in the log or ferryd's output."""
    assert setup.ssh.process is not None
    for text in (setup.ssh.log.path.read_text(), setup.ssh.process.diagnostics()):
        assert PASSWORD not in text and BASIC_PASSWORD not in text


# -- accepted ---------------------------------------------------------------------------------


async def test_204_accepts_with_the_default_group_home(setup: Setup) -> None:
    setup.identity.answer("dora", Answer(204))

    async with await connect(setup, "dora") as conn, conn.start_sftp_client() as sftp:
        assert await sftp.realpath(".") == "/"
        async with sftp.open("hello.txt", "w") as file:
            await file.write("from dora\n")

    assert (setup.ssh.home("dora") / "hello.txt").read_text() == "from dora\n"
    line = setup.ssh.wait_event("20137", "dora authenticated with password")
    assert line.endswith("by http method http-main (groups DEFAULT_GROUP).")


async def test_the_request_is_the_contract(setup: Setup) -> None:
    setup.identity.answer("rita", Answer(204))

    async with await connect(setup, "rita") as conn:
        local_port = conn.get_extra_info("sockname")[1]

    (request,) = setup.identity.requests_for("rita")
    assert request.path == PATH
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    token = base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {token}"  # replaces the custom one
    assert request.headers["x-api-key"] == API_KEY
    assert request.body == {
        "credentials": {
            "type": "password",
            "username": "rita",
            "content": PASSWORD,
            "peer": {
                "address": "127.0.0.1",
                "port": local_port,
                "family": "IPv4",
                "protocol": "TCP",
            },
            "creator": {"uuid": "sftp", "type": "ssh"},
        },
        "server": {"uuid": SERVER_UUID},
    }


def test_test_at_start_sent_a_probe_that_is_no_real_login(setup: Setup) -> None:
    (probe,) = setup.identity.requests_for("ferryd-test-at-start")
    assert probe.credentials["type"] == "password"
    assert probe.credentials["content"] == ""
    assert probe.credentials["creator"] == {"uuid": "http-main", "type": "test-at-start"}
    assert setup.ssh.log.count("20156", "http-main") == 1  # started: 401 is a contract answer


async def test_200_account_sets_home_groups_folders_and_permissions(setup: Setup) -> None:
    home, shared = setup.root / "carol-home", setup.root / "carol-shared"
    shared.mkdir()
    (shared / "readme.txt").write_text("shared notes\n")
    account = {
        "uuid": "carol-0001",
        "group": "partners",
        "home_folder_path": str(home),
        "create_home_folder": True,
        "home_folder_structure": ["inbox", "outbox/archive"],
        "virtual_folders": [["/shared", str(shared)]],
        "permissions": [
            ["allow-read", "allow-list", "allow-traverse"],
            ["/inbox/*", "allow-full-control"],
        ],
        "email": "carol@example.com, ops@example.com",
    }
    setup.identity.answer("carol", Answer(200, {"account": account}))

    async with await connect(setup, "carol") as conn, conn.start_sftp_client() as sftp:
        assert sorted(await sftp.listdir("/")) == [".", "..", "inbox", "outbox", "shared"]
        async with sftp.open("/inbox/order.csv", "w") as file:
            await file.write("id\n1\n")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            async with sftp.open("/top-level.csv", "w") as file:
                await file.write("not allowed\n")
        async with sftp.open("/shared/readme.txt") as file:
            assert await file.read() == "shared notes\n"

    assert (home / "inbox" / "order.csv").read_text() == "id\n1\n"
    assert (home / "outbox" / "archive").is_dir()
    assert not (home / "top-level.csv").exists()
    setup.ssh.wait_event(
        "20137", "carol authenticated with password by http method http-main (groups partners)"
    )


async def test_the_groups_required_credentials_hold_for_accounts_the_service_vouches_for(
    setup: Setup,
) -> None:
    account = {"group": "keys-only", "home_folder_path": str(setup.root / "kelly")}
    setup.identity.answer("kelly", Answer(200, {"account": account}))

    await refused(setup, "kelly")

    line = setup.ssh.wait_event("20142", "Login of kelly with password rejected")
    assert line.endswith(
        "by http method http-main: password logins not allowed (requires ssh-key)"
    ), line
    assert setup.ssh.log.count("20137", "kelly authenticated") == 0


def test_openssh_key_login_sends_the_key_blob_and_never_a_password(
    setup: Setup, tmp_path: Path
) -> None:
    blob = public_line(client_key()).split()[1]

    def only_the_client_key(request: Received) -> Answer:
        """204 for the key sshkit's client uses, whatever else (an agent) offers first."""
        return Answer(204) if request.credentials["content"] == blob else Answer(403, "no")

    setup.identity.answer("sam", only_the_client_key)
    local = tmp_path / "invoice.txt"
    local.write_text("invoice 7\n")

    result = setup.ssh.sftp("sam", [f"put {local} invoice.txt", "ls -1"])

    assert result.returncode == 0, result.stderr
    assert (setup.ssh.home("sam") / "invoice.txt").read_text() == "invoice 7\n"
    requests = setup.identity.requests_for("sam")
    assert blob in [r.credentials["content"] for r in requests]
    assert {r.credentials["type"] for r in requests} == {"ssh-key"}
    assert not any(PASSWORD.encode() in r.raw for r in requests)
    setup.ssh.wait_event("20137", "sam authenticated with ssh-key by http method http-main")


# -- unknown, rejected, failed ---------------------------------------------------------------


async def test_401_lets_the_next_method_decide(setup: Setup) -> None:
    async with await connect(setup, "app-user"):
        pass

    assert setup.identity.requests_for("app-user")
    line = setup.ssh.wait_event("20255", "method http-main does not know app-user")
    assert f"{setup.identity.url} does not know the account (401)" in line
    setup.ssh.wait_event("20137", "app-user authenticated with password by application method")


async def test_401_with_no_next_method_is_refused_as_unknown(setup: Setup) -> None:
    setup.identity.answer("somebody", Answer(204))

    await refused(setup, "nobody", service="only-http")
    async with await connect(setup, "somebody", service="only-http"):
        pass

    setup.ssh.wait_event("20081", "No authentication method knows nobody")
    # The later login's 20137 is written after anything nobody's refusal caused.
    setup.ssh.wait_event("20137", "somebody authenticated with password by http method")
    assert setup.ssh.log.count("20137", "nobody authenticated") == 0


@pytest.mark.parametrize(
    ("user", "body", "message"),
    [
        ("mallory", "account locked by HR", "account locked by HR"),
        (
            "trent",
            {"code": 7, "message": "contract expired", "public_response": "no"},
            "contract expired",
        ),
    ],
    ids=["plain-text", "json"],
)
async def test_403_rejects_with_the_service_message(
    setup: Setup, user: str, body: Any, message: str
) -> None:
    setup.identity.answer(user, Answer(403, body))

    await refused(setup, user)

    line = setup.ssh.wait_event("20142", f"Login of {user} with password rejected by http method")
    assert line.endswith(f"{setup.identity.url} refused the login (403): {message}")
    no_secret_logged(setup)


async def test_unexpected_status_rejects_naming_it(setup: Setup) -> None:
    setup.identity.answer("teapot", Answer(418, "short and stout"))

    await refused(setup, "teapot")

    line = setup.ssh.wait_event("20142", "Login of teapot with password rejected")
    assert line.endswith(f"{setup.identity.url} answered with status 418 (I'm a teapot)")


async def test_server_error_means_the_method_cannot_decide(setup: Setup) -> None:
    setup.identity.answer("oops", Answer(500, "database unavailable"))

    await refused(setup, "oops")

    line = setup.ssh.wait_event(
        "20256", "Login of oops refused: http method http-main could not decide"
    )
    assert f"{setup.identity.url}: server error 500 (Internal Server Error)" in line


async def test_a_reason_never_quotes_the_password(setup: Setup) -> None:
    setup.identity.answer("echo", Answer(403, f"wrong password {PASSWORD!r} for echo"))

    await refused(setup, "echo")

    line = setup.ssh.wait_event("20142", "Login of echo with password rejected")
    assert line.endswith("refused the login (403): wrong password '***' for echo")
    no_secret_logged(setup)


async def test_slow_service_is_refused_within_the_timeout(setup: Setup) -> None:
    setup.identity.answer("sloth", Answer(204, delay=TIMEOUT + 5))

    took = await refused(setup, "sloth")

    assert took < TIMEOUT + 3
    line = setup.ssh.wait_event("20256", "Login of sloth refused")
    assert f"{setup.identity.url}: no answer within {TIMEOUT} seconds" in line


INVALID_ANSWERS = [
    ("bad-json", "<html>oops</html>", "the body is not JSON"),
    ("not-object", [1, 2], "expected a JSON object, got a list"),
    ("no-account", {"user": {}}, "unknown key 'user' (only 'account' is expected)"),
    ("unknown-key", {"account": {"shell": "/bin/sh"}}, "account.shell: unknown key"),
    ("upper-case", {"account": {"UUID": "x"}}, "account.UUID: unknown key"),
    (
        "wrong-type",
        {"account": {"create_home_folder": "yes"}},
        "account.create_home_folder: expected true or false, got a string",
    ),
    (
        "bad-folders",
        {"account": {"virtual_folders": [["/only-one"]]}},
        "account.virtual_folders[0]: expected [virtual path, real path]",
    ),
    (
        "os-owner",
        {"account": {"create_home_folder_owner": "bob"}},
        "account.create_home_folder_owner: an OS-account option, not supported by ferryd",
    ),
]


@pytest.mark.parametrize(
    ("user", "body", "reason"), INVALID_ANSWERS, ids=[case[0] for case in INVALID_ANSWERS]
)
async def test_invalid_200_answer_is_refused_naming_the_key(
    setup: Setup, user: str, body: Any, reason: str
) -> None:
    setup.identity.answer(user, Answer(200, body))

    await refused(setup, user)

    line = setup.ssh.wait_event("20256", f"Login of {user} refused")
    assert f"invalid response from {setup.identity.url}: {reason}" in line


async def test_account_options_refused_by_ferryd_reject_naming_the_option(setup: Setup) -> None:
    answer = {"account": {"permissions": [["allow-everything"]], "group": "partners"}}
    setup.identity.answer("greedy", Answer(200, answer))
    setup.identity.answer("lost", Answer(200, {"account": {"group": "no-such-group"}}))

    await refused(setup, "greedy")
    await refused(setup, "lost")

    line = setup.ssh.wait_event("20142", "Login of greedy with password rejected")
    assert f"account from {setup.identity.url} refused: permissions: " in line
    assert "unknown permission 'allow-everything'" in line
    line = setup.ssh.wait_event("20142", "Login of lost with password rejected")
    assert line.endswith("refused: group 'no-such-group' does not exist")


# -- failover and suspension ------------------------------------------------------------------


async def test_first_url_down_the_second_answers(setup: Setup) -> None:
    setup.identity.answer("felix", Answer(204))

    async with await connect(setup, "felix", service="failover"):
        pass

    setup.ssh.wait_event(
        "20137", "felix authenticated with password by http method http-down-first"
    )
    line = setup.ssh.wait_event(
        "20260", f"HTTP identity URL {setup.down} suspended for 300 seconds"
    )
    assert line.endswith("cannot connect: Connection refused")


async def test_a_5xx_url_is_suspended_and_skipped_by_later_logins(setup: Setup) -> None:
    setup.identity.answer("susan", Answer(204))

    for _ in range(2):
        async with await connect(setup, "susan", service="suspend"):
            pass

    assert len(setup.broken.requests_for("susan")) == 1  # the second login went straight on
    assert len(setup.identity.requests_for("susan")) == 2
    line = setup.ssh.wait_event("20260", f"HTTP identity URL {setup.broken.url} suspended")
    assert line.endswith("server error 500 (Internal Server Error)")
    assert setup.ssh.log.count("20260", setup.broken.url) == 1


# -- TLS --------------------------------------------------------------------------------------


async def test_https_with_the_trusted_ca_logs_in(setup: Setup) -> None:
    setup.secure.answer("tess", Answer(204))

    async with await connect(setup, "tess", service="tls"):
        pass

    assert setup.secure.requests_for("tess")
    setup.ssh.wait_event("20137", "tess authenticated with password by http method http-tls")


async def test_https_with_an_untrusted_certificate_is_refused(setup: Setup) -> None:
    setup.secure.answer("ursula", Answer(204))

    await refused(setup, "ursula", service="untrusted")

    assert setup.secure.requests_for("ursula") == []
    line = setup.ssh.wait_event("20256", "Login of ursula refused: http method http-untrusted")
    assert f"{setup.secure.url}: the server's TLS certificate is not trusted" in line


# -- lifecycle --------------------------------------------------------------------------------


async def test_reconfigured_headers_apply_to_the_next_login_without_restart(setup: Setup) -> None:
    setup.identity.answer("rex", Answer(204))
    stops = setup.ssh.log.count("20157", "http-main")
    try:
        await asyncio.to_thread(setup.ssh.reload, **setup.parts(api_key="key-rotated"))

        async with await connect(setup, "rex"):
            pass

        (request,) = setup.identity.requests_for("rex")
        assert request.headers["x-api-key"] == "key-rotated"
        assert setup.ssh.log.count("20157", "http-main") == stops  # reconfigured in place
    finally:
        await asyncio.to_thread(setup.ssh.reload, **setup.parts())


async def test_test_at_start_with_the_service_down_fails_the_method(setup: Setup) -> None:
    try:
        await asyncio.to_thread(setup.ssh.reload, **setup.parts(at_start=True))
        line = setup.ssh.wait_event("20158", "http http-at-start failed to start")
        assert line.endswith(
            f"test request failed: {setup.down}: cannot connect: Connection refused"
        )
        await refused(setup, "late", service="at-start")

        line = setup.ssh.wait_event("20256", "Login of late refused: http method http-at-start")
        assert line.endswith("the method is not running (it failed to start, or is restarting)")
    finally:
        await asyncio.to_thread(setup.ssh.reload, **setup.parts())


def test_test_at_start_failure_stops_ferryd_starting(ssh: SshServer) -> None:
    url = down_url()
    ssh.write(
        service="authentications = http-probe",
        extra=f"[authentications/http-probe]\ntype = http\nurl = {url}\ntest_at_start = yes\n",
    )

    process = ssh.ferryd.serve(ssh.config)

    assert process.wait_exit() == 1
    (line,) = ssh.log.events("20158", "http http-probe failed to start")
    assert line.endswith(f"test request failed: {url}: cannot connect: Connection refused")
    (line,) = ssh.log.events("20004")
    assert line == (
        "20004 ferryd could not start: [authentications/http-probe] test request failed: "
        f"{url}: cannot connect: Connection refused"
    )
