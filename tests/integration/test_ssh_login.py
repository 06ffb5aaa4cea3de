"""Logging in to the SSH service: which credentials and accounts get in, and what is logged.

One ``ferryd serve`` holds an account per situation (disabled, expired, filtered...) and is
shared by the module; each test uses its own account, so its events are told apart by name.
Tests that rewrite server.ini start their own server. Event ids: 20042 home created, 20067
home unusable, 20081 unknown user, 20137 login accepted, 20142 login rejected (with the
reason), 20197 plain-text password hashed, 30011 session started.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest
from polling import wait_for
from sshkit import PASSWORD, SshServer, account_section, client_key, other_key, public_line

from ferryd.auth.passwords import verify_password

WRONG = "not the password"
BANNER = "Authorised use only."


def crypt_hash(scheme: str) -> str:
    """A SHA-crypt hash of PASSWORD made by OpenSSL (``-5`` or ``-6``), not by ferryd."""
    result = subprocess.run(
        ["openssl", "passwd", scheme, "-salt", "saltsalt", PASSWORD],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def ab64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").replace("+", ".").rstrip("=")


def pbkdf2_hash() -> str:
    """passlib's ``$pbkdf2-sha256$`` format, built with hashlib."""
    salt = b"sixteen byte slt"
    checksum = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), salt, 29000)
    return f"$pbkdf2-sha256$29000${ab64(salt)}${ab64(checksum)}"


HASHES = {"sha512-crypt": "-6", "sha256-crypt": "-5", "pbkdf2-sha256": ""}


def shared_accounts(root: Path) -> str:
    keys_file = root / "keys" / "keyfile.pub"
    keys_file.parent.mkdir(parents=True)
    keys_file.write_text(f"# provisioned\n{public_line(client_key())}\n")
    leaky = root / "keys" / "leaky"
    leaky.mkdir()
    (leaky / "client.pub").write_text(public_line(client_key()) + "\n")
    other_key().write_private_key(str(leaky / "id_ed25519"))
    (root / "keys" / "mixed.pub").write_text(
        f"ssh-ed25519 AAAA-not-base64 broken\n"
        f'permitopen="no-port-here" {public_line(other_key())}\n'
        f"{public_line(client_key())}\n"
    )
    (root / "keys" / "unusable.pub").write_text(
        f"# only lines that cannot be used\nssh-ed25519 AAAA-not-base64 broken\n"
        f'permitopen="no-port-here" {public_line(client_key())}\n'
    )
    hashed = {name: crypt_hash(flag) if flag else pbkdf2_hash() for name, flag in HASHES.items()}
    return "\n".join(
        [
            account_section("alice"),
            account_section("banner-user"),
            account_section("wrong-pw"),
            account_section("wrong-key"),
            account_section("disabled-acct", options="enabled = no"),
            account_section("closed-member", options="group = closed"),
            account_section("expired-acct", options="expire_datetime = 2020-01-01"),
            account_section("future-acct", options="expire_datetime = 2099-01-01 12:00"),
            account_section(
                "ip-denied", options="source_ip_filter = deny 127.0.0.1/32\n  allow 0.0.0.0/0"
            ),
            account_section("ip-allowed", options="source_ip_filter = allow 127.0.0.0/8"),
            account_section("far-member", options="group = far-away"),
            account_section("far-and-near", options="group = far-away, DEFAULT_GROUP"),
            account_section("key-only", options="required_credentials = ssh-key"),
            account_section("password-only", options="required_credentials = password"),
            *(account_section(name, password=value, key=None) for name, value in hashed.items()),
            account_section(
                "keyfile-user", key=None, options=f"ssh_authorized_keys_path = {keys_file}"
            ),
            account_section("leaky-user", key=None, options=f"ssh_authorized_keys_path = {leaky}"),
            *(
                account_section(
                    f"{name}-keys",
                    key=None,
                    options=f"ssh_authorized_keys_path = {root / 'keys' / name}.pub",
                )
                for name in ("mixed", "unusable")
            ),
            account_section("fresh-home"),
            account_section("no-home", options="create_home_folder = no"),
        ]
    )


SHARED_GROUPS = """
[groups/closed]
name = closed
enabled = no

[groups/far-away]
name = far-away
source_ip_filter = allow 10.0.0.0/8
"""


@pytest.fixture(scope="module")
def server(module_ssh: Callable[[str], SshServer]) -> SshServer:
    ssh = module_ssh("ssh-login")
    ssh.start(
        accounts=shared_accounts(ssh.root),
        service=f"before_login_message = {BANNER}",
        group="home_folder_structure = inbox\n  outbox",
        extra=SHARED_GROUPS,
    )
    return ssh


def rejection(server: SshServer, user: str, credentials_type: str) -> str:
    """The 20142 line of ``user``'s rejected login, once it is written."""
    return server.wait_event("20142", f"Login of {user} with {credentials_type} rejected")


def accepted(server: SshServer, user: str, credentials_type: str) -> str:
    return server.wait_event("20137", f"{user} authenticated with {credentials_type} by")


async def assert_sftp_works(conn: asyncssh.SSHClientConnection) -> None:
    async with conn.start_sftp_client() as sftp:
        assert await sftp.realpath(".") == "/"
        await sftp.listdir(".")


async def assert_refused(server: SshServer, user: str, **credentials: object) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        async with await server.connect(user, **credentials):  # type: ignore[arg-type]
            pass


def never_logged_in(server: SshServer, user: str, credentials_type: str) -> bool:
    """No 20137 for ``user``, looked for once the refusal (20142) is in the log: events are
    written in order, so a login accepted before it would be there by then."""
    rejection(server, user, credentials_type)
    return server.log.count("20137", f"{user} authenticated with") == 0


# -- credentials ----------------------------------------------------------------------------------


async def test_correct_password_logs_in_and_is_logged_as_password(server: SshServer) -> None:
    async with await server.connect("alice", password=PASSWORD) as conn:
        await assert_sftp_works(conn)
    line = accepted(server, "alice", "password")
    assert line.endswith("by application method DEFAULT-AUTHENTICATION (groups DEFAULT_GROUP).")


async def test_authorized_key_logs_in_and_is_logged_as_ssh_key(server: SshServer) -> None:
    async with await server.connect("alice", key=client_key()) as conn:
        await assert_sftp_works(conn)
    accepted(server, "alice", "ssh-key")


def test_openssh_sftp_client_logs_in_with_the_key_and_transfers(
    server: SshServer, tmp_path: Path
) -> None:
    local = tmp_path / "report.csv"
    local.write_text("id,total\n1,42\n")

    result = server.sftp("alice", [f"put {local} openssh.csv", "ls -1"])

    assert result.returncode == 0, result.stderr
    assert "openssh.csv" in result.stdout
    assert (server.home("alice") / "openssh.csv").read_text() == "id,total\n1,42\n"


async def test_wrong_password_is_refused_as_invalid_password(server: SshServer) -> None:
    await assert_refused(server, "wrong-pw", password=WRONG)
    assert rejection(server, "wrong-pw", "password").endswith(": invalid password")
    assert never_logged_in(server, "wrong-pw", "password")


async def test_key_the_account_does_not_list_is_refused(server: SshServer) -> None:
    await assert_refused(server, "wrong-key", key=other_key())
    assert rejection(server, "wrong-key", "ssh-key").endswith(": public key not authorized")
    assert never_logged_in(server, "wrong-key", "ssh-key")


@pytest.mark.parametrize("credentials_type", ["password", "ssh-key"])
async def test_unknown_user_is_refused_and_logged_as_unknown(
    server: SshServer, credentials_type: str
) -> None:
    user = f"nobody-{credentials_type}"
    if credentials_type == "password":
        await assert_refused(server, user, password=PASSWORD)
    else:
        await assert_refused(server, user, key=client_key())
    line = server.wait_event("20081", f"knows {user} ")
    assert line == f"20081 No authentication method knows {user} ({credentials_type})."
    assert server.log.count("20142", user) == 0


# -- account state --------------------------------------------------------------------------------


# -- account state and source address filters ----------------------------------------------------


@pytest.mark.parametrize(
    ("user", "reason"),
    [
        ("disabled-acct", ": account is disabled"),
        ("closed-member", ": group 'closed' is disabled"),
        ("expired-acct", ": account expired on 2020-01-01T00:00:00+00:00"),
        # "allow 0.0.0.0/0" follows: the refusal comes from the deny line, not from "no match".
        ("ip-denied", ": source address 127.0.0.1 refused by source_ip_filter"),
        ("far-member", ": source address 127.0.0.1 refused by every group's filter"),
    ],
    ids=[
        "account-enabled-no",
        "group-enabled-no",
        "expire_datetime-past",
        "account-source_ip_filter-deny-line",
        "no-group-filter-admits-the-peer",
    ],
)
async def test_account_refused_by_its_state_or_a_filter_even_with_the_right_password(
    server: SshServer, user: str, reason: str
) -> None:
    await assert_refused(server, user, password=PASSWORD)
    assert rejection(server, user, "password").endswith(reason)
    assert never_logged_in(server, user, "password")


@pytest.mark.parametrize(
    ("user", "credentials_type"),
    [("future-acct", "password"), ("ip-allowed", "ssh-key")],
    ids=["expire_datetime-future", "account-source_ip_filter-allows-the-peer"],
)
async def test_account_expiring_later_or_allowed_by_its_filter_logs_in(
    server: SshServer, user: str, credentials_type: str
) -> None:
    if credentials_type == "password":
        conn = await server.connect(user, password=PASSWORD)
    else:
        conn = await server.connect(user, key=client_key())
    async with conn:
        await assert_sftp_works(conn)
    accepted(server, user, credentials_type)


async def test_group_whose_filter_excludes_the_peer_does_not_apply_to_the_session(
    server: SshServer,
) -> None:
    async with await server.connect("far-and-near", password=PASSWORD) as conn:
        await assert_sftp_works(conn)
    assert accepted(server, "far-and-near", "password").endswith("(groups DEFAULT_GROUP).")


# -- required_credentials -------------------------------------------------------------------------


async def test_required_credentials_ssh_key_refuses_password_and_accepts_key(
    server: SshServer,
) -> None:
    await assert_refused(server, "key-only", password=PASSWORD)
    reason = rejection(server, "key-only", "password")
    assert reason.endswith(": password logins not allowed (requires ssh-key)")
    async with await server.connect("key-only", key=client_key()) as conn:
        await assert_sftp_works(conn)
    accepted(server, "key-only", "ssh-key")


async def test_required_credentials_password_refuses_key_and_accepts_password(
    server: SshServer,
) -> None:
    await assert_refused(server, "password-only", key=client_key())
    reason = rejection(server, "password-only", "ssh-key")
    assert reason.endswith(": ssh-key logins not allowed (requires password)")
    async with await server.connect("password-only", password=PASSWORD) as conn:
        await assert_sftp_works(conn)
    accepted(server, "password-only", "password")


# -- password hashes ------------------------------------------------------------------------------


@pytest.mark.parametrize("user", list(HASHES))
async def test_imported_password_hash_accepts_only_the_right_password(
    server: SshServer, user: str
) -> None:
    await assert_refused(server, user, password=WRONG)
    assert rejection(server, user, "password").endswith(": invalid password")
    async with await server.connect(user, password=PASSWORD) as conn:
        await assert_sftp_works(conn)
    accepted(server, user, "password")


@pytest.mark.parametrize("when", ["start-up", "reload"])
async def test_plain_text_password_is_replaced_by_its_hash_and_never_logged(
    ssh: SshServer, when: str
) -> None:
    plain = "s3cret-plain"
    accounts = account_section("carol", password=plain, key=None)
    text = ssh.ini(accounts=accounts)
    number = text.splitlines().index(f"password = {plain}")
    if when == "start-up":
        ssh.start(accounts=accounts)
    else:
        ssh.start(accounts=account_section("alice"))
        ssh.reload(accounts=accounts)
        assert ssh.log.events("20250")[-1].startswith("20250 Configuration generation 2 ")

    after = ssh.config.ini.read_text(encoding="utf-8")
    stored = after.splitlines()[number].removeprefix("password = ")
    assert stored.startswith("$argon2id$"), stored
    assert verify_password(stored, plain)
    assert after == text.replace(f"password = {plain}\n", f"password = {stored}\n"), (
        "other lines of server.ini changed"
    )
    assert ssh.process is not None
    line = ssh.process.wait_for_event(ssh.log, "20197")[-1]
    assert (
        line
        == f"20197 Plain-text password of account carol replaced by its hash in {ssh.config.ini}."
    )

    async with await ssh.connect("carol", password=plain) as conn:
        await assert_sftp_works(conn)
    accepted(ssh, "carol", "password")
    assert plain not in ssh.log.path.read_text(encoding="utf-8")
    assert plain not in ssh.process.stdout() + ssh.process.stderr()


# -- authorized keys from files -------------------------------------------------------------------


async def test_authorized_keys_file_grants_key_login(server: SshServer) -> None:
    async with await server.connect("keyfile-user", key=client_key()) as conn:
        await assert_sftp_works(conn)
    accepted(server, "keyfile-user", "ssh-key")


async def test_private_key_in_the_authorized_keys_folder_fails_key_login(
    server: SshServer,
) -> None:
    # The folder also holds the right public key: the private key alone makes the login fail.
    await assert_refused(server, "leaky-user", key=client_key())
    reason = rejection(server, "leaky-user", "ssh-key")
    assert reason.endswith(
        "/keys/leaky/id_ed25519 holds a private key; only public keys belong there"
    )
    assert never_logged_in(server, "leaky-user", "ssh-key")


async def test_a_bad_line_in_an_authorized_keys_file_leaves_the_other_keys_working(
    server: SshServer,
) -> None:
    async with await server.connect("mixed-keys", key=client_key()) as conn:
        await assert_sftp_works(conn)
    accepted(server, "mixed-keys", "ssh-key")


async def test_a_refused_key_login_names_each_authorized_keys_line_that_was_skipped(
    server: SshServer,
) -> None:
    await assert_refused(server, "unusable-keys", key=client_key())
    reason = rejection(server, "unusable-keys", "ssh-key")
    keys = f"{server.root}/keys/unusable.pub"
    assert reason.endswith(
        f"public key not authorized; skipped {keys} line 2: not a public key;"
        f" skipped {keys} line 3: Illegal permitopen value: no-port-here"
    ), reason


# -- home folder ----------------------------------------------------------------------------------


async def test_first_login_creates_the_home_and_its_folder_structure(server: SshServer) -> None:
    home = server.home("fresh-home")
    assert not home.exists()

    async with (
        await server.connect("fresh-home", password=PASSWORD) as conn,
        conn.start_sftp_client() as sftp,
    ):
        assert sorted(await sftp.listdir(".")) == [".", "..", "inbox", "outbox"]

    line = server.wait_event("20042", "created for fresh-home")
    assert line == f"20042 Home folder {home} created for fresh-home."
    assert (home / "inbox").is_dir() and (home / "outbox").is_dir()

    # The structure is completed at each login; the existing home is not "created" again.
    (home / "outbox").rmdir()
    async with await server.connect("fresh-home", key=client_key()) as conn:
        await assert_sftp_works(conn)
    accepted(server, "fresh-home", "ssh-key")
    assert (home / "outbox").is_dir()
    assert server.log.count("20042", "created for fresh-home") == 1


async def test_missing_home_without_create_home_folder_refuses_the_session(
    server: SshServer,
) -> None:
    # The client authenticates, then the connection is closed before a session can start.
    with pytest.raises(asyncssh.Error):
        async with (
            await server.connect("no-home", password=PASSWORD) as conn,
            conn.start_sftp_client() as sftp,
        ):
            await sftp.listdir(".")

    line = server.wait_event("20067", "Login of no-home refused")
    assert line.startswith("20067 Login of no-home refused: home folder unusable: ")
    assert not server.home("no-home").exists()
    assert server.log.count("30011", "for no-home in") == 0


# -- banner ---------------------------------------------------------------------------------------


async def test_before_login_message_reaches_the_client_before_authentication(
    server: SshServer,
) -> None:
    banners: list[str] = []

    class BannerClient(asyncssh.SSHClient):
        def auth_banner_received(self, msg: str, lang: str) -> None:
            banners.append(msg)

        def auth_completed(self) -> None:
            banners.append("<authenticated>")

    async with await server.connect(
        "banner-user", password=PASSWORD, client_factory=BannerClient
    ) as conn:
        await assert_sftp_works(conn)

    assert banners == [BANNER + "\n", "<authenticated>"]


def descendants(pid: int) -> dict[int, int]:
    """The processes descending from ``pid``, each with its parent (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found: dict[int, int] = {}
    level = {pid}
    while level:
        level = {child for child, parent in parents.items() if parent in level}
        found.update({child: parents[child] for child in level})
    return found


async def sha_crypt_logins(ssh: SshServer, count: int) -> None:
    logins = [ssh.connect("imported", password=PASSWORD) for _ in range(count)]
    for conn in await asyncio.gather(*logins):
        async with conn:
            await assert_sftp_works(conn)


@pytest.mark.parametrize("ending", ["stop", "kill"])
async def test_sha_crypt_logins_verify_in_worker_processes_that_end_with_the_server(
    ssh: SshServer, ending: str
) -> None:
    """SHA-crypt verification holds the interpreter lock, so concurrent logins would take
    turns on one core in threads: ferryd verifies them in a process pool (one worker per
    core), made at the first such login. A worker that dies is replaced at the next login;
    ferryd stopping, or killed, leaves no process behind."""
    ssh.start(
        accounts=account_section("imported", password=crypt_hash("-6"), key=None)
        + account_section("alice")
    )
    assert ssh.process is not None
    pid = ssh.process.process.pid
    async with await ssh.connect("alice") as conn:  # a key login needs no pool
        await assert_sftp_works(conn)
    assert descendants(pid) == {}
    await sha_crypt_logins(ssh, 4)
    helpers = descendants(pid)
    workers = [child for child, parent in helpers.items() if parent != pid]
    assert workers, f"the verification ran in worker processes: {helpers}"

    os.kill(workers[0], signal.SIGKILL)  # the OOM killer picked one
    wait_for(lambda: not Path(f"/proc/{workers[0]}").exists(), what="the worker to die")
    await sha_crypt_logins(ssh, 2)

    helpers = descendants(pid)
    if ending == "stop":
        assert ssh.process.stop() == 0
    else:
        ssh.process.kill()  # no shutdown runs: the workers notice on their own
    wait_for(
        lambda: not any(Path(f"/proc/{helper}").exists() for helper in helpers),
        timeout=10,
        what=f"the hashing processes {sorted(helpers)} to exit with ferryd",
    )
