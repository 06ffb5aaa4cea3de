"""The mixed chain of docs/authentication.md, run for real: a ``local-file`` accounts file, an
HTTP identity service and a slapd behind one SSH service. Every row of the page's outcome
table is one case here, and the rows and the cases must stay the same set.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from identity_service import Answer, IdentityService
from slapd import BASE_LDIF, Slapd, person
from sshkit import SshServer

from ferryd.auth.passwords import hash_password

PAGE = Path(__file__).resolve().parents[2] / "docs" / "authentication.md"
ACME_PASSWORD = "acme-file-secret"
ALICE_PASSWORD = "alice-ldap-secret"


def documented() -> tuple[str, list[str]]:
    """The chain example (its ini block) and the first cell of each outcome row."""
    text = PAGE.read_text()
    section = text[text.index("## A chain of several methods") :]
    (block,) = re.findall(r"```ini\n(.*?)```", section, flags=re.DOTALL)
    rows = re.findall(r"^\| (`[^|]*?) \|", section, flags=re.MULTILINE)
    return block, rows


@dataclass
class Chain:
    server: SshServer
    identity: IdentityService
    directory: Slapd


@pytest.fixture(scope="module")
def chain(module_ssh: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    root = tmp_path_factory.mktemp("chain")
    block, _ = documented()
    server_part, sections = block.split("\n\n", 1)
    methods = re.search(r"authentications = (.*)", server_part)
    assert methods is not None and server_part.startswith("[server]")

    directory = Slapd(root / "slapd", BASE_LDIF + "\n" + person("alice", "people", ALICE_PASSWORD))
    identity = IdentityService()
    identity.answer("globex", Answer(204))
    identity.answer("initech", Answer(403, {"message": "account suspended by the registry"}))
    directory.start()
    identity.start()
    try:
        sections = (
            sections.replace("http://127.0.0.1:8080/auth", identity.url)
            .replace("port = 389", f"port = {directory.port}")
            .replace("/srv/sftp/staff", str(root / "staff"))
        )
        server: SshServer = module_ssh("chain")
        server.config.path.mkdir(parents=True, exist_ok=True)
        (server.config.path / "partners.ini").write_text(
            f"[accounts/acme]\nname = acme\npassword = {hash_password(ACME_PASSWORD)}\n"
        )
        server.start(service=f"authentications = {methods.group(1)}", extra=sections)
        yield Chain(server, identity, directory)
    finally:
        identity.stop()
        directory.close()


async def attempt(chain: Chain, user: str, password: str) -> bool:
    try:
        async with (
            await chain.server.connect(user, password=password) as conn,
            conn.start_sftp_client() as sftp,
        ):
            await sftp.listdir(".")
        return True
    except asyncssh.PermissionDenied:
        return False


@dataclass(frozen=True)
class Case:
    user: str
    password: str
    accepted: bool
    event_id: str
    says: str  # text of the outcome event
    identity_asked: bool
    directory_asked: bool


CASES = {
    "`acme`, right password (in `partners.ini`)": Case(
        "acme", ACME_PASSWORD, True, "20137", "by local-file method partners-file", False, False
    ),
    "`acme`, wrong password": Case(
        "acme", "not it", False, "20142", "by local-file method partners-file", False, False
    ),
    "`globex` (service answers 204)": Case(
        "globex",
        "any",
        True,
        "20137",
        "by http method identity-service (groups DEFAULT_GROUP)",
        True,
        False,
    ),
    "`initech` (service answers 403)": Case(
        "initech",
        "any",
        False,
        "20142",
        "account suspended by the registry",
        True,
        False,
    ),
    "`alice`, LDAP password (service answers 401)": Case(
        "alice",
        ALICE_PASSWORD,
        True,
        "20137",
        "by ldap method corporate-ldap (groups staff)",
        True,
        True,
    ),
    "`alice`, wrong password": Case(
        "alice", "not it", False, "20142", "by ldap method corporate-ldap", True, True
    ),
    "`nobody` (nowhere)": Case(
        "nobody", "whatever", False, "20142", "by ldap method corporate-ldap", True, True
    ),
}


def test_the_cases_are_the_rows_of_the_documented_table() -> None:
    _, rows = documented()
    assert rows == list(CASES)


@pytest.mark.parametrize("row", list(CASES))
async def test_each_login_gets_the_documented_outcome(chain: Chain, row: str) -> None:
    case = CASES[row]
    asked_before = len(chain.identity.requests_for(case.user))
    ldap_log = chain.directory.log_size()
    events_before = chain.server.log.count(case.event_id, case.says)

    assert await attempt(chain, case.user, case.password) is case.accepted

    assert chain.server.process is not None
    line = chain.server.process.wait_for_event(
        chain.server.log, case.event_id, case.says, count=events_before + 1
    )[-1]
    assert case.user in line
    asked = len(chain.identity.requests_for(case.user)) > asked_before
    assert asked is case.identity_asked, "the identity service is asked only when documented"
    bound = f"uid={case.user},ou=people" in chain.directory.log_since(ldap_log)
    assert bound is case.directory_asked, "the directory is asked only when documented"
    if case.user == "nobody":
        assert not chain.server.log.events("20081", "nobody"), "LDAP is terminal"
