"""The ``ldap`` authentication method against a real OpenLDAP slapd, through real SSH logins.

One slapd (plain LDAP and LDAPS, see slapd.py) holds the directory below, and one
``ferryd serve`` runs an SSH service per method configuration, so each test logs in to the
service of the method it is about. A second slapd, started and stopped by the outage test,
backs the ``ldap-flaky`` method. Event ids: 20137 login accepted (with the groups), 20142
refused by the method (with its reason), 20255 passed to the next method, 20256 refused
because the method could not decide, 20158 a component failed to start.

Directory (dc=mft,dc=test):
  ou=people:   alice (SSHA password; departmentNumber finance-emea; homeDirectory)
               bob   (plain password; departmentNumber refinance; employeeType contractor)
               erin  (employeeType suspended)
               frank (uid: frank and uid: uid=frank, as AD keeps a login name attribute)
               grace (nothing else)
               henry (uid: uid=grace: another entry's attribute equal to grace's login name)
  ou=partners: carol (SSHA password)
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh
import pytest
from slapd import BASE_LDIF, SUFFIX, Slapd, TestPki, person, ssha
from sshkit import PASSWORD, SshServer, account_section

if TYPE_CHECKING:
    from conftest import LogFile

PASSWORDS = {
    "alice": "alice-secret",
    "bob": "bob-secret",
    "carol": "carol-secret",
    "erin": "erin-secret",
    "frank": "frank-secret",
    "grace": "grace-secret",
}
PEOPLE = f"ou=people,{SUFFIX}"
PARTNERS = f"ou=partners,{SUFFIX}"
FLAKY_TIMEOUT = 2.0
SLACK = 3.0  # what "within the timeout" allows for the SSH round trips around it


def directory_ldif(root: Path) -> str:
    return "\n".join(
        [
            BASE_LDIF,
            person(
                "alice",
                "people",
                ssha(PASSWORDS["alice"]),
                home=str(root / "ldap-homes" / "alice"),
                extra={"departmentNumber": ["finance-emea"], "employeeType": ["staff"]},
            ),
            person(
                "bob",
                "people",
                PASSWORDS["bob"],  # a plain-text userPassword: slapd compares it as is
                extra={"departmentNumber": ["refinance"], "employeeType": ["contractor"]},
            ),
            person(
                "erin", "people", ssha(PASSWORDS["erin"]), extra={"employeeType": ["suspended"]}
            ),
            person(
                "frank",
                "people",
                ssha(PASSWORDS["frank"]),
                extra={"uid": ["uid=frank"], "employeeType": ["contractor"]},
            ),
            person("grace", "people", ssha(PASSWORDS["grace"])),
            person(
                "henry",
                "people",
                ssha("henry-secret"),
                extra={"uid": ["uid=grace"], "employeeType": ["contractor"]},
            ),
            person("carol", "partners", ssha(PASSWORDS["carol"])),
        ]
    )


def method(uuid: str, port: int, options: str) -> str:
    return (
        f"[authentications/{uuid}]\ntype = ldap\naddress = 127.0.0.1\nport = {port}\n"
        f"username_attribute = uid\n{options.strip()}\n"
    )


def service(name: str, authentications: str) -> str:
    return (
        f"[services/{name}]\ntype = ssh\naddress = 127.0.0.1\nport = 0\n"
        f"authentications = {authentications}\n"
    )


BOTH_BASES = f"bind_dn = {PEOPLE}\n  {PARTNERS}"
MAPPING = (
    "group_mapping = departmentNumber, finance*, finance\n  employeeType, m/contract/, contractors"
)
NOT_SUSPENDED = "search_filter = (!(employeeType=suspended))"

# service name -> the method it uses (the default service "sftp" uses ldap-parent)
SERVICES = {
    "sftp": "ldap-parent",
    "relative": "ldap-relative",
    "absolute": "ldap-absolute",
    "direct": "ldap-direct",
    "home": "ldap-home",
    "template": "ldap-template",
    "ldaps": "ldap-ldaps",
    "untrusted": "ldap-untrusted",
    "chain": "ldap-parent, DEFAULT-AUTHENTICATION",
    "flaky": "ldap-flaky",
}


@dataclass
class Setup:
    """Everything the module's tests share."""

    ssh: SshServer
    directory: Slapd
    flaky: Slapd
    pki: TestPki
    root: Path

    def extra(self, untrusted_ca: str | None = None) -> str:
        """Methods, services and groups; ``untrusted_ca`` replaces ldap-untrusted's CA."""
        root, port, ldaps = self.root, self.directory.port, self.directory.ldaps_port
        sections = [
            method("ldap-parent", port, f"{BOTH_BASES}\n{MAPPING}\nbase_groups = ldap-users"),
            method(
                "ldap-relative", port, f"bind_dn_type = relative\n{BOTH_BASES}\n{NOT_SUSPENDED}"
            ),
            method(
                "ldap-absolute", port, f"bind_dn_type = absolute\n{BOTH_BASES}\n{NOT_SUSPENDED}"
            ),
            method(
                "ldap-direct",
                port,
                f"bind_dn_type = direct-username\nusername_suffix = ,{PEOPLE}\n"
                f"bind_dn = {PEOPLE}\n{MAPPING}",
            ),
            method("ldap-home", port, f"{BOTH_BASES}\nhome_folder_attribute = homeDirectory"),
            method(
                "ldap-template",
                port,
                f"{BOTH_BASES}\nhome_folder_attribute = uid, {root}/template-homes/{{uid}}",
            ),
            method(
                "ldap-ldaps",
                ldaps,
                f"secure_connection = yes\ntls_trusted_certificates = ldap-ca.pem\n{BOTH_BASES}",
            ),
            method(
                "ldap-untrusted",
                ldaps,
                "secure_connection = yes\n"
                f"tls_trusted_certificates = {untrusted_ca or self.pki.other_ca_file}\n"
                f"{BOTH_BASES}",
            ),
            method(
                "ldap-flaky",
                self.flaky.port,
                f"bind_dn = {PEOPLE}\ntimeout = {FLAKY_TIMEOUT:g}",
            ),
            *(service(name, methods) for name, methods in SERVICES.items() if name != "sftp"),
            f"[groups/ldap-users]\nhome_folder_path = {root}/ldap-users\n"
            "create_home_folder = yes\n",
            f"[groups/contractors]\nhome_folder_path = {root}/contractors\n"
            "create_home_folder = yes\n",
            f"[groups/finance]\nhome_folder_path = {root}/finance\ncreate_home_folder = yes\n"
            "permissions = allow-list, allow-read, allow-traverse\n",
            # The accounts' UUIDs (the entries' DNs), which the audit log does not show.
            "[event-handlers/uuids]\ntype = local-file\npath = log/uuids.log\n"
            "entry_content = {id} {account.uuid} {message}\n",
        ]
        return "\n".join(sections)

    def parts(self, untrusted_ca: str | None = None) -> dict[str, str]:
        return {
            "service": "authentications = ldap-parent",
            "accounts": account_section("keyuser"),
            "extra": self.extra(untrusted_ca),
        }

    async def connect(
        self, service_name: str, user: str, password: str
    ) -> asyncssh.SSHClientConnection:
        """A password login to the SSH service ``service_name``."""
        port = self.ssh.service_port(service_name)
        return await self.ssh.connect(user, password=password, port=port)

    async def login(self, service_name: str, user: str, password: str | None = None) -> str:
        """Log in with a password and list the home; return the 20137 line of this login."""
        text = f"{user} authenticated with password by ldap method {self.method(service_name)} "
        seen = self.ssh.log.count("20137", text)
        password = (
            PASSWORDS[user.removeprefix("uid=").split(",")[0]] if password is None else password
        )
        async with (
            await self.connect(service_name, user, password) as conn,
            conn.start_sftp_client() as sftp,
        ):
            await sftp.listdir(".")
        return self.ssh.wait_event("20137", text, seen + 1)

    async def put(self, service_name: str, user: str, name: str) -> None:
        """Log in with the user's password and upload a small file to the home."""
        async with (
            await self.connect(service_name, user, PASSWORDS[user]) as conn,
            conn.start_sftp_client() as sftp,
            sftp.open(name, "w") as file,
        ):
            await file.write("uploaded\n")

    async def refused(
        self, service_name: str, user: str, password: str, event_id: str = "20142"
    ) -> str:
        """Log in and expect a refusal; return the event line saying why."""
        text = f"Login of {user} " + ("refused:" if event_id == "20256" else "with password")
        seen = self.ssh.log.count(event_id, text)
        with pytest.raises(asyncssh.PermissionDenied):
            async with await self.connect(service_name, user, password):
                pass
        return self.ssh.wait_event(event_id, text, seen + 1)

    @property
    def uuids(self) -> LogFile:
        return self.ssh.config.log("log/uuids.log")

    @staticmethod
    def method(service_name: str) -> str:
        return SERVICES[service_name].split(",")[0]


@pytest.fixture(scope="module")
def setup(
    module_ssh: Callable[[str], SshServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("ldap")
    pki = TestPki(root / "pki")
    directory = Slapd(root / "slapd", directory_ldif(root), pki=pki)
    flaky = Slapd(root / "flaky", BASE_LDIF + "\n" + person("alice", "people", "alice-secret"))
    try:
        directory.start()
        ssh = module_ssh("ldap-ssh")
        setup = Setup(ssh, directory, flaky, pki, root)
        ssh.config.path.mkdir(parents=True, exist_ok=True)
        shutil.copy(pki.ca_file, ssh.config.path / "ldap-ca.pem")  # a relative CA path
        (root / "finance" / "alice").mkdir(parents=True)
        (root / "finance" / "alice" / "statement.csv").write_text("month,total\n")
        ssh.start(**setup.parts())
        for name in SERVICES:
            ssh.service_port(name)  # every service listens before the first test
        yield setup
    finally:
        flaky.close()
        directory.close()


# -- each bind style ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service_name", "user", "dn"),
    [
        ("sftp", "alice", f"uid=alice,{PEOPLE}"),
        ("sftp", "bob", f"uid=bob,{PEOPLE}"),
        ("sftp", "carol", f"uid=carol,{PARTNERS}"),
        ("relative", "alice", f"uid=alice,{PEOPLE}"),
        ("relative", "carol", f"uid=carol,{PARTNERS}"),
        ("absolute", f"uid=alice,{PEOPLE}", f"uid=alice,{PEOPLE}"),
        ("absolute", f"uid=carol,{PARTNERS}", f"uid=carol,{PARTNERS}"),
        ("direct", "uid=grace", f"uid=grace,{PEOPLE}"),
    ],
    ids=[
        "parent-ssha",
        "parent-plain-password",
        "parent-second-base",
        "relative",
        "relative-second-base",
        "absolute",
        "absolute-second-base",
        "direct-username",
    ],
)
async def test_each_bind_style_logs_in_with_the_right_password(
    setup: Setup, service_name: str, user: str, dn: str
) -> None:
    line = await setup.login(service_name, user)
    assert f"by ldap method {setup.method(service_name)} " in line
    assert setup.ssh.log.count("20142", f"Login of {user} with password") == 0
    # The account's UUID is the entry's DN.
    setup.ssh.wait_event("20137", f"{dn} {line.split(' ', 1)[1]}", log=setup.uuids)


async def test_direct_username_binds_with_the_suffix_and_reads_the_entry_found_in_the_bases(
    setup: Setup,
) -> None:
    # slapd takes only DNs as bind names, so the test's suffix makes NAME+SUFFIX a DN, and
    # frank's entry holds "uid=frank" as a uid value, as AD holds sAMAccountName: the mapped
    # group proves that the entry was found and its attributes read.
    line = await setup.login("direct", "uid=frank")
    assert line.endswith("(groups contractors).")
    # grace's own entry has no such value; henry's has "uid=grace". The entry read is the
    # one that bound (Who am I?), not henry's: his contractor group must not apply.
    assert (await setup.login("direct", "uid=grace")).endswith("(groups DEFAULT_GROUP).")


async def test_a_name_typed_in_another_case_is_the_same_account_and_home(setup: Setup) -> None:
    """The directory matches uid whatever its case; ferryd must not split the user's files
    between a home per spelling."""
    async with (
        await setup.connect("sftp", "BoB", PASSWORDS["bob"]) as conn,
        conn.start_sftp_client() as sftp,
        sftp.open("case.txt", "w") as file,
    ):
        await file.write("typed as BoB\n")
    setup.ssh.wait_event("20137", "bob authenticated with password by ldap method ldap-parent")
    async with (
        await setup.connect("sftp", "bob", PASSWORDS["bob"]) as conn,
        conn.start_sftp_client() as sftp,
    ):
        assert "case.txt" in await sftp.listdir(".")
    assert setup.ssh.log.count("20137", "BoB authenticated") == 0


# -- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("service_name", ["sftp", "relative", "absolute", "direct"])
async def test_wrong_password_is_refused_as_invalid_credentials(
    setup: Setup, service_name: str
) -> None:
    user = {"absolute": f"uid=bob,{PEOPLE}", "direct": "uid=bob"}.get(service_name, "bob")
    line = await setup.refused(service_name, user, "not-bobs-password")
    assert line.endswith(
        f"rejected by ldap method {setup.method(service_name)}: invalid credentials"
    )
    assert setup.ssh.log.count("20256", f"Login of {user} ") == 0


async def test_unknown_user_is_refused_not_passed_on(setup: Setup) -> None:
    line = await setup.refused("sftp", "mallory", PASSWORDS["alice"])
    assert line.endswith("rejected by ldap method ldap-parent: invalid credentials")
    line = await setup.refused("relative", "mallory", PASSWORDS["alice"])
    assert line.endswith(
        "invalid credentials (no entry matches (&(uid=mallory)(!(employeeType=suspended))))"
    )
    assert setup.ssh.log.count("20081", "mallory") == 0  # LDAP is terminal: no "nobody knows"


@pytest.mark.parametrize("password", ["", "   "], ids=["empty", "blank"])
async def test_empty_password_is_refused_without_asking_the_server(
    setup: Setup, password: str
) -> None:
    # An LDAP simple bind with an empty password is an anonymous bind, which succeeds.
    offset = setup.directory.log_size()
    line = await setup.refused("sftp", "alice", password)
    assert line.endswith(
        "rejected by ldap method ldap-parent: empty password (LDAP would take "
        "it as an anonymous bind)"
    )
    assert " BIND " not in setup.directory.log_since(offset)


@pytest.mark.parametrize(
    ("service_name", "user"),
    [
        ("relative", "*"),
        ("relative", "al*"),
        ("relative", "alice)(uid=*"),
        ("sftp", "*"),
        ("sftp", "alice,ou=people"),
    ],
)
async def test_filter_and_dn_characters_in_the_name_match_nobody(
    setup: Setup, service_name: str, user: str
) -> None:
    # Unescaped, "al*" and "alice)(uid=*" would find alice and her password would log in.
    line = await setup.refused(service_name, user, PASSWORDS["alice"])
    assert "invalid credentials" in line
    accepted = [x for x in setup.ssh.log.events("20137") if x.startswith(f"20137 {user} auth")]
    assert accepted == []


async def test_search_filter_refuses_entries_it_does_not_match(setup: Setup) -> None:
    line = await setup.refused("relative", "erin", PASSWORDS["erin"])
    assert line.endswith("(no entry matches (&(uid=erin)(!(employeeType=suspended))))")
    line = await setup.refused("absolute", f"uid=erin,{PEOPLE}", PASSWORDS["erin"])
    assert line.endswith(
        f"entry uid=erin,{PEOPLE} does not match search_filter (!(employeeType=suspended))"
    )


async def test_absolute_dn_outside_the_bases_is_refused_even_with_its_password(
    setup: Setup,
) -> None:
    line = await setup.refused("absolute", f"cn=admin,{SUFFIX}", "admin-secret")
    assert line.endswith("the login DN is under none of the bind_dn bases")


# -- groups and homes -----------------------------------------------------------------------------


async def test_group_mapping_gives_groups_and_the_session_their_home_and_permissions(
    setup: Setup,
) -> None:
    # finance* is a glob: it matches "finance-emea" whole, not "refinance" (bob); m/contract/
    # is a regex: it matches part of "contractor". Mapped groups first, then base_groups.
    line = await setup.login("sftp", "alice")
    assert line.endswith("by ldap method ldap-parent (groups finance, ldap-users).")
    line = await setup.login("sftp", "bob")
    assert line.endswith("(groups contractors, ldap-users).")
    line = await setup.login("sftp", "carol")
    assert line.endswith("(groups ldap-users).")
    assert (await setup.login("relative", "carol")).endswith("(groups DEFAULT_GROUP).")

    async with (
        await setup.connect("sftp", "alice", PASSWORDS["alice"]) as conn,
        conn.start_sftp_client() as sftp,
    ):
        assert "statement.csv" in await sftp.listdir(".")  # finance's home for alice
        async with sftp.open("statement.csv") as file:
            assert await file.read() == "month,total\n"
        with pytest.raises(asyncssh.SFTPError) as raised:
            async with sftp.open("upload.csv", "w") as file:
                await file.write("no\n")
    assert raised.value.code == asyncssh.FX_PERMISSION_DENIED  # finance is read-only
    assert not (setup.root / "finance" / "alice" / "upload.csv").exists()


async def test_home_folder_attribute_gives_the_home(setup: Setup) -> None:
    await setup.put("home", "alice", "from-ldap.txt")
    assert (setup.root / "ldap-homes" / "alice" / "from-ldap.txt").exists()


async def test_home_folder_attribute_template_fills_in_the_value(setup: Setup) -> None:
    await setup.put("template", "carol", "templated.txt")
    assert (setup.root / "template-homes" / "carol" / "templated.txt").exists()


async def test_missing_or_multi_valued_home_attribute_refuses_the_login(setup: Setup) -> None:
    line = await setup.refused("home", "bob", PASSWORDS["bob"])
    assert line.endswith(f"home_folder_attribute: entry uid=bob,{PEOPLE} has no homeDirectory")
    line = await setup.refused("template", "frank", PASSWORDS["frank"])
    assert line.endswith(
        f"home_folder_attribute: uid of uid=frank,{PEOPLE} has 2 values, expected one"
    )


# -- keys and the rest of the chain ---------------------------------------------------------------


def test_ssh_key_passes_to_the_next_method_with_the_openssh_client(
    setup: Setup, tmp_path: Path
) -> None:
    local = tmp_path / "keyed.txt"
    local.write_text("by key\n")
    result = openssh_sftp(setup, "chain", "keyuser", [f"put {local} keyed.txt"], key=True)
    assert result.returncode == 0, result.stderr
    assert (setup.ssh.home("keyuser") / "keyed.txt").read_text() == "by key\n"
    line = setup.ssh.wait_event("20255", "does not know keyuser")
    assert line == (
        "20255 ldap method ldap-parent does not know keyuser (ldap authenticates passwords "
        "only); asking the next method."
    )
    setup.ssh.wait_event("20137", "keyuser authenticated with ssh-key by application method")


async def test_password_refused_by_ldap_is_not_passed_to_the_next_method(setup: Setup) -> None:
    # keyuser's application password is right, but LDAP decides every password login.
    line = await setup.refused("chain", "keyuser", PASSWORD)
    assert line.endswith("rejected by ldap method ldap-parent: invalid credentials")
    assert setup.ssh.log.count("20137", "keyuser authenticated with password") == 0


def test_openssh_sftp_client_logs_in_with_an_ldap_password(setup: Setup, tmp_path: Path) -> None:
    local = tmp_path / "report.csv"
    local.write_text("id,total\n1,42\n")
    result = openssh_sftp(setup, "sftp", "carol", [f"put {local} report.csv", "ls -1"])
    assert result.returncode == 0, result.stderr
    assert "report.csv" in result.stdout
    assert (setup.root / "ldap-users" / "carol" / "report.csv").read_text() == "id,total\n1,42\n"
    setup.ssh.wait_event("20137", "carol authenticated with password by ldap method ldap-parent")


def openssh_sftp(
    setup: Setup, service_name: str, user: str, commands: list[str], *, key: bool = False
) -> subprocess.CompletedProcess[str]:
    """OpenSSH ``sftp -b``; with a password (of PASSWORDS) given through SSH_ASKPASS."""
    batch = setup.root / f"batch-{user}.txt"
    batch.write_text("\n".join(commands) + "\n")
    env = dict(os.environ)
    options = ["-F", "/dev/null", "-o", "IdentitiesOnly=yes"]  # nothing from this machine
    options += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    options += ["-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"]
    if key:
        options += ["-o", "BatchMode=yes", "-i", str(setup.ssh.client_key_file)]
    else:
        askpass = setup.root / f"askpass-{user}"
        askpass.write_text(f"#!/bin/sh\necho '{PASSWORDS[user]}'\n")
        askpass.chmod(0o700)
        env.update(SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=":0")
        # sftp -b turns BatchMode on (no password prompts); an earlier -o wins in ssh.
        options += ["-o", "BatchMode=no", "-o", "PreferredAuthentications=password"]
        options += ["-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1"]
    return subprocess.run(
        [
            "sftp",
            "-P",
            str(setup.ssh.service_port(service_name)),
            *options,
            "-b",
            str(batch),
            f"{user}@127.0.0.1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
    )


# -- LDAPS ----------------------------------------------------------------------------------------


async def test_ldaps_with_the_trusted_ca_logs_in(setup: Setup) -> None:
    # tls_trusted_certificates = ldap-ca.pem: relative to the configuration folder.
    assert (await setup.login("ldaps", "carol")).endswith(
        "by ldap method ldap-ldaps (groups DEFAULT_GROUP)."
    )


async def test_ldaps_certificate_from_another_ca_refuses_until_the_ca_is_fixed(
    setup: Setup,
) -> None:
    line = await setup.refused("untrusted", "alice", PASSWORDS["alice"], event_id="20256")
    assert f"ldap method ldap-untrusted could not decide: {setup.directory.ldaps_url}: " in line
    assert "the server certificate is not trusted" in line
    # The administrator points the method at the right CA and reloads: applied in place.
    restarts = setup.ssh.log.count("20012", "ldap-untrusted")
    setup.ssh.reload(**setup.parts(untrusted_ca=str(setup.pki.ca_file)))
    try:
        await setup.login("untrusted", "alice")
        assert setup.ssh.log.count("20012", "ldap-untrusted") == restarts
    finally:
        setup.ssh.reload(**setup.parts())


async def test_missing_ca_file_refuses_the_edit_and_the_last_good_options_stay(
    setup: Setup,
) -> None:
    missing = setup.root / "no-such-ca.pem"
    refusals = setup.ssh.log.count("20010")
    setup.ssh.reload(**setup.parts(untrusted_ca=str(missing)))
    try:
        line = setup.ssh.wait_event("20010", count=refusals + 1)
        assert "[authentications/ldap-untrusted] tls_trusted_certificates:" in line, line
        assert line.endswith(f"{missing} does not exist or is not a file"), line
        # The method keeps running with its previous CA file.
        line = await setup.refused("untrusted", "carol", PASSWORDS["carol"], event_id="20256")
        assert "the server certificate is not trusted" in line
    finally:
        requests = setup.ssh.log.count("20251")
        setup.ssh.write(**setup.parts())
        assert setup.ssh.process is not None
        setup.ssh.process.hup()
        setup.ssh.wait_event("20251", count=requests + 1)


# -- the server going away ------------------------------------------------------------------------


async def test_server_outage_refuses_within_the_timeout_and_logins_recover(setup: Setup) -> None:
    flaky, url = setup.flaky, setup.flaky.url
    assert not flaky.is_running()  # ferryd started without it: only logins notice
    line = await setup.refused("flaky", "alice", "alice-secret", event_id="20256")
    assert line.endswith(f"could not decide: {url}: connection refused")

    flaky.start()
    await setup.login("flaky", "alice", "alice-secret")  # leaves a connection in the pool
    failures = setup.ssh.log.count("20256")
    flaky.stop()
    flaky.start()
    await setup.login("flaky", "alice", "alice-secret")  # the pooled one is dead: retried
    assert setup.ssh.log.count("20256") == failures

    flaky.stop()
    started = time.monotonic()
    line = await setup.refused("flaky", "alice", "alice-secret", event_id="20256")
    assert time.monotonic() - started < FLAKY_TIMEOUT + SLACK
    assert line.endswith(f"ldap method ldap-flaky could not decide: {url}: connection refused")

    flaky.start()
    await setup.login("flaky", "alice", "alice-secret")

    flaky.pause()  # connections are accepted by the kernel, nothing answers
    try:
        started = time.monotonic()
        line = await setup.refused("flaky", "alice", "alice-secret", event_id="20256")
        assert time.monotonic() - started < FLAKY_TIMEOUT + SLACK
        assert line.endswith(f"could not decide: {url}: no answer within 2 s (timed out)")
    finally:
        flaky.resume()
    await setup.login("flaky", "alice", "alice-secret")


async def test_concurrent_logins_all_succeed(setup: Setup) -> None:
    # More logins at once than the method has threads and pooled connections.
    users = ["alice", "bob", "carol"] * 4
    text = "with password by ldap method ldap-parent "
    seen = setup.ssh.log.count("20137", text)

    async def log_in(user: str) -> None:
        async with (
            await setup.connect("sftp", user, PASSWORDS[user]) as conn,
            conn.start_sftp_client() as sftp,
        ):
            await sftp.listdir(".")

    await asyncio.gather(*(log_in(user) for user in users))
    setup.ssh.wait_event("20137", text, seen + len(users))
