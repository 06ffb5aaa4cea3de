"""The ``local-file`` authentication method: partners' accounts in their own file, reloaded live.

One ``ferryd serve`` is shared by the module. Its ``sftp`` service asks, in order:
``partners-file`` (partners.ini, which ferryd may rewrite), ``managed-file`` (managed.ini,
``external_management = yes``), ``late-file`` (a file whose folder does not exist when ferryd
starts) and ``DEFAULT-AUTHENTICATION`` (server.ini accounts); its ``file-only`` service asks
``partners-file`` alone. ``linked-file`` reads its file through a symbolic link into another
folder, whose edits the folder watch cannot see: only its poll notices them.

Each test writes the whole partners.ini it needs, under a new ``# revision`` comment so every
write is a change, and waits for the method's event before relying on it. Event ids: 20081
nobody knows the name, 20137 login accepted, 20142 rejected, 20197 plain-text password hashed,
20255 unknown to a method, 20258 accounts file loaded, 20259 accounts file refused.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from sshkit import PASSWORD, SshServer, account_section, replace_atomically

from ferryd.auth.passwords import verify_password
from ferryd.config.watch import file_stamp

PARTNERS_GROUP = """\
[groups/partners]
name = partners
home_folder_path = {homes}/${{USER}}
create_home_folder = yes
home_folder_structure = inbox
permissions = allow-list, allow-traverse, allow-read
    /inbox/*, allow-full-control
"""


def line_of(text: str, needle: str) -> int:
    """1-based number of the first line of ``text`` containing ``needle``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in:\n{text}")


@dataclass
class AccountsFile:
    """One method's accounts file and the events the method emits about it."""

    path: Path
    ssh: SshServer
    header: str = ""
    revision: int = field(default=0)

    def text(self, *sections: str) -> str:
        self.revision += 1
        return "\n".join([f"# revision {self.revision}\n{self.header}", *sections])

    def loads(self) -> int:
        return self.ssh.log.count("20258", f"file {self.path} of")

    def refusals(self) -> int:
        return self.ssh.log.count("20259", f": {self.path}")

    def wait(self, event_id: str, count: int) -> str:
        containing = f"file {self.path} of" if event_id == "20258" else f": {self.path}"
        return self.ssh.wait_event(event_id, containing, count)

    def replace(self, text: str) -> str:
        """Replace the file and wait until the method has loaded it; its 20258 line."""
        before = self.loads()
        replace_atomically(self.path, text)
        return self.wait("20258", before + 1)

    def refuse(self, text: str) -> str:
        """Replace the file with a bad one; the 20259 line that refuses it."""
        before = self.refusals()
        replace_atomically(self.path, text)
        return self.wait("20259", before + 1)


@dataclass
class Site:
    ssh: SshServer
    partners: AccountsFile
    managed: AccountsFile
    late: AccountsFile
    linked: AccountsFile
    partner_homes: Path
    parts: dict[str, str]

    def base(self, *extra: str) -> str:
        """partners.ini with olivia (group partners) and dora (no group), plus ``extra``."""
        olivia = account_section("olivia", options="group = partners")
        return self.partners.text(olivia, account_section("dora"), *extra)


def methods(root: Path) -> str:
    return textwrap.dedent(
        f"""
        [authentications/partners-file]
        type = local-file
        path = {root / "partners" / "partners.ini"}

        [authentications/managed-file]
        type = local-file
        path = {root / "managed" / "managed.ini"}
        external_management = yes

        [authentications/late-file]
        type = local-file
        path = {root / "late" / "late.ini"}
        changes_poll_interval = 0.2

        [authentications/linked-file]
        type = local-file
        path = {root / "links" / "linked.ini"}
        changes_poll_interval = 0.2

        [event-handlers/accounts-file-data]
        type = local-file
        path = log/accounts-file.log
        target = 20259
        entry_content = {{data_json}}

        [services/file-only]
        type = ssh
        address = 127.0.0.1
        port = 0
        authentications = partners-file
        """
    )


MIKE_PLAIN = "mike-plain-secret"
PETE_PLAIN = "pete-plain-secret"


@pytest.fixture(scope="module")
def site(module_ssh: Callable[[str], SshServer]) -> Iterator[Site]:
    ssh = module_ssh("local-file")
    root = ssh.root
    partner_homes = root / "partner-homes"
    header = PARTNERS_GROUP.format(homes=partner_homes)
    for folder in ("partners", "managed", "links", "elsewhere"):
        (root / folder).mkdir()
    (root / "links" / "linked.ini").symlink_to(root / "elsewhere" / "linked.ini")
    site = Site(
        ssh=ssh,
        partners=AccountsFile(root / "partners" / "partners.ini", ssh, header),
        managed=AccountsFile(root / "managed" / "managed.ini", ssh),
        late=AccountsFile(root / "late" / "late.ini", ssh),
        linked=AccountsFile(root / "links" / "linked.ini", ssh),
        partner_homes=partner_homes,
        parts={
            "accounts": account_section("alice"),
            "service": "authentications = partners-file, managed-file, late-file, "
            "DEFAULT-AUTHENTICATION",
            "extra": methods(root),
        },
    )
    site.partners.path.write_text(site.base())
    site.managed.path.write_text(account_section("mike", password=MIKE_PLAIN, key=None))
    (root / "elsewhere" / "linked.ini").write_text(account_section("lou"))
    ssh.start(**site.parts)
    ssh.port = ssh.service_port("sftp")
    yield site


async def assert_refused(ssh: SshServer, user: str, **credentials: object) -> None:
    with pytest.raises(asyncssh.PermissionDenied):
        async with await ssh.connect(user, **credentials):  # type: ignore[arg-type]
            pass


def accepted(site: Site, user: str, credentials_type: str) -> str:
    return site.ssh.wait_event("20137", f"{user} authenticated with {credentials_type} by")


def refusal_data(site: Site, line: str) -> dict[str, Any]:
    """The data fields of the 20259 event logged as ``line``, from the data_json log."""
    problem = line.split(": ", 1)[1]
    log = site.ssh.config.log("log/accounts-file.log")

    def found() -> dict[str, Any] | None:
        for entry in reversed(log.lines()):
            data: dict[str, Any] = json.loads(entry)
            if data["problem"] == problem:
                return data
        return None

    assert site.ssh.process is not None
    return site.ssh.process.wait_until(found, f"20259 data for {problem!r}")


# -- noticing changes -----------------------------------------------------------------------------


async def test_an_account_added_to_the_file_logs_in_within_two_seconds(site: Site) -> None:
    site.partners.replace(site.base())
    text = site.base(account_section("newbie", options="group = partners"))

    site.partners.path.write_text(text)  # in place, as an editor saves
    elapsed = await site.ssh.seconds_until_login("newbie", limit=10)

    assert elapsed < 2.0, f"the new account needed {elapsed:.2f} s"
    line = accepted(site, "newbie", "password")
    assert line.endswith("by local-file method partners-file (groups partners).")


async def test_a_file_replaced_by_rename_is_loaded_without_waiting_for_a_login(
    site: Site,
) -> None:
    loaded = site.partners.replace(site.base(account_section("renamed")))

    assert loaded == (
        f"20258 Accounts file {site.partners.path} of partners-file loaded: 3 accounts, 1 groups."
    )
    async with await site.ssh.connect("renamed", password=PASSWORD):
        pass
    accepted(site, "renamed", "password")


async def test_a_change_the_folder_watch_cannot_see_is_loaded_by_polling(site: Site) -> None:
    # linked.ini is a symbolic link: the target lives in a folder nobody watches, and no login
    # asks linked-file anything, so only its 0.2 s poll can notice the new account.
    target = site.linked.path.resolve()
    before = site.linked.loads()

    replace_atomically(target, account_section("lou") + account_section("lucy"))

    line = site.linked.wait("20258", before + 1)
    assert line.endswith("loaded: 2 accounts, 0 groups.")


def test_file_stamp_changes_with_every_kind_of_rewrite(tmp_path: Path) -> None:
    """What the poll and the per-login check compare: a same-size edit within the same
    timestamp is still told apart by a rename-over (new inode) or a later mtime."""
    path = tmp_path / "accounts.ini"
    assert file_stamp(path) is None
    path.write_text("[accounts/a]\nname = a\n")
    first = file_stamp(path)
    assert first is not None and file_stamp(path) == first

    replace_atomically(path, "[accounts/b]\nname = b\n")  # same size...
    os.utime(path, ns=(first[0], first[0]))  # ...and the same modification time
    renamed = file_stamp(path)
    assert renamed is not None and renamed[:2] == first[:2] and renamed != first

    path.write_text("[accounts/c]\nname = c\n")  # in place: same inode and size
    os.utime(path, ns=(first[0] + 1_000, first[0] + 1_000))
    assert file_stamp(path) not in (first, renamed)

    path.unlink()
    assert file_stamp(path) is None


# -- a broken file keeps the last good accounts ---------------------------------------------------


BROKEN = {
    "syntax-error": (
        "[accounts/brandnew]\nname = brandnew\nthis line has no delimiter\n",
        "this line has no delimiter",
        "expected 'name = value', a [section] header or a comment",
    ),
    "invalid-value": (
        "[accounts/brandnew]\nname = brandnew\nenabled = maybe\n",
        "enabled = maybe",
        "[accounts/brandnew] enabled: expected a boolean",
    ),
    "group-not-in-the-file": (
        "[accounts/brandnew]\nname = brandnew\ngroup = nowhere\n",
        "group = nowhere",
        "[accounts/brandnew] group: no [groups/nowhere] section is defined",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
async def test_a_broken_file_is_reported_with_its_line_and_the_old_accounts_stay(
    site: Site, case: str
) -> None:
    good = site.base()
    site.partners.replace(good)
    section, needle, message = BROKEN[case]
    text = site.base(section)

    line = site.partners.refuse(text)

    number = line_of(text, needle)
    assert line.startswith(
        "20259 Accounts file refused, the previous accounts stay in force: "
        f"{site.partners.path}:{number}: {message}"
    ), line
    data = refusal_data(site, line)
    assert (data["method_name"], data["path"], data["line"]) == (
        "partners-file",
        str(site.partners.path),
        number,
    )
    assert data["problems"] == [data["problem"]]
    async with await site.ssh.connect("olivia", password=PASSWORD):
        pass
    accepted(site, "olivia", "password")
    await assert_refused(site.ssh, "brandnew", password=PASSWORD)
    site.ssh.wait_event("20081", "knows brandnew")

    # Put back as it was, the file is announced as loaded again.
    site.partners.replace(good)


# -- which method decides -------------------------------------------------------------------------


async def test_removed_account_cannot_log_in_again_but_its_open_session_continues(
    site: Site,
) -> None:
    site.partners.replace(site.base(account_section("leaver")))
    async with (
        await site.ssh.connect("leaver", password=PASSWORD) as conn,
        conn.start_sftp_client() as sftp,
    ):
        site.partners.replace(site.base())

        await assert_refused(site.ssh, "leaver", password=PASSWORD)
        line = site.ssh.wait_event("20255", "partners-file does not know leaver")
        assert f"(no such account in {site.partners.path})" in line
        site.ssh.wait_event("20081", "knows leaver")

        async with sftp.open("still-here.txt", "w") as handle:
            await handle.write("written after the account was removed\n")
        assert "still-here.txt" in await sftp.listdir(".")
    assert (site.ssh.home("leaver") / "still-here.txt").is_file()


async def test_a_name_not_in_the_file_is_left_to_the_next_method(site: Site) -> None:
    async with await site.ssh.connect("alice", password=PASSWORD):
        pass

    line = site.ssh.wait_event("20255", "partners-file does not know alice")
    assert line == (
        f"20255 local-file method partners-file does not know alice "
        f"(no such account in {site.partners.path}); asking the next method."
    )
    assert accepted(site, "alice", "password").endswith(
        "by application method DEFAULT-AUTHENTICATION (groups DEFAULT_GROUP)."
    )


async def test_with_no_next_method_a_name_not_in_the_file_is_unknown(site: Site) -> None:
    file_only = site.ssh.service_port("file-only")
    with pytest.raises(asyncssh.PermissionDenied):
        async with await site.ssh.connect("alice", password=PASSWORD, port=file_only):
            pass

    assert site.ssh.wait_event("20081", "knows alice") == (
        "20081 No authentication method knows alice (password)."
    )


# -- groups ---------------------------------------------------------------------------------------


async def test_the_files_group_gives_the_home_folder_and_permissions(site: Site) -> None:
    site.partners.replace(site.base())
    async with (
        await site.ssh.connect("olivia", password=PASSWORD) as conn,
        conn.start_sftp_client() as sftp,
    ):
        assert await sftp.realpath(".") == "/"
        assert "inbox" in await sftp.listdir(".")
        with pytest.raises(asyncssh.SFTPPermissionDenied):
            async with sftp.open("/root-upload.txt", "w") as handle:
                await handle.write("not allowed here\n")
        async with sftp.open("/inbox/invoice.txt", "w") as handle:
            await handle.write("allowed in the inbox\n")

    home = site.partner_homes / "olivia"
    assert (home / "inbox" / "invoice.txt").read_text() == "allowed in the inbox\n"
    assert not (home / "root-upload.txt").exists()
    assert accepted(site, "olivia", "password").endswith("(groups partners).")


async def test_an_account_naming_no_group_uses_the_main_default_group(site: Site) -> None:
    site.partners.replace(site.base())
    async with (
        await site.ssh.connect("dora", password=PASSWORD) as conn,
        conn.start_sftp_client() as sftp,
        sftp.open("hello.txt", "w") as handle,
    ):
        await handle.write("home from server.ini's DEFAULT_GROUP\n")

    assert (site.ssh.home("dora") / "hello.txt").is_file()
    assert accepted(site, "dora", "password").endswith(
        "by local-file method partners-file (groups DEFAULT_GROUP)."
    )


# -- plain-text passwords -------------------------------------------------------------------------


async def test_a_plain_text_password_is_replaced_by_its_hash_in_the_file(site: Site) -> None:
    text = site.base(account_section("pete", password=PETE_PLAIN, key=None))
    number = line_of(text, f"password = {PETE_PLAIN}")

    replace_atomically(site.partners.path, text)

    assert site.ssh.wait_event("20197", "account pete") == (
        f"20197 Plain-text password of account pete replaced by its hash in {site.partners.path}."
    )
    after = site.partners.path.read_text(encoding="utf-8")
    stored = after.splitlines()[number - 1].removeprefix("password = ")
    assert stored.startswith("$argon2id$"), stored
    assert verify_password(stored, PETE_PLAIN)
    assert after == text.replace(PETE_PLAIN, stored), "other lines of the file changed"

    async with await site.ssh.connect("pete", password=PETE_PLAIN):
        pass
    accepted(site, "pete", "password")
    assert PETE_PLAIN not in site.ssh.log.path.read_text(encoding="utf-8")


async def test_an_externally_managed_file_is_never_written_and_plain_text_cannot_log_in(
    site: Site,
) -> None:
    original = site.managed.path.read_bytes()

    await assert_refused(site.ssh, "mike", password=MIKE_PLAIN)

    line = site.ssh.wait_event("20142", "Login of mike with password rejected")
    assert line.endswith(
        "by local-file method managed-file: unsupported password hash scheme 'plain text' "
        f"(externally managed, {site.managed.path} must hold a password hash)"
    ), line
    assert site.managed.path.read_bytes() == original
    assert site.ssh.log.count("20197", "account mike") == 0
    assert MIKE_PLAIN not in site.ssh.log.path.read_text(encoding="utf-8")


# -- start-up, clients, keys ----------------------------------------------------------------------


async def test_a_file_missing_at_start_is_reported_and_its_accounts_come_when_it_appears(
    site: Site,
) -> None:
    refused = site.late.wait("20259", 1)
    assert refused.endswith(f"{site.late.path}: cannot read: No such file or directory"), refused
    assert refusal_data(site, refused)["line"] == 0  # the whole file is at fault
    assert site.ssh.log.count("20181") == 1  # ferryd started all the same

    site.late.path.parent.mkdir(exist_ok=True)
    before = site.late.loads()
    replace_atomically(site.late.path, account_section("lena", password=None))
    site.late.wait("20258", before + 1)

    async with await site.ssh.connect("lena"):  # the shared client key
        pass
    assert accepted(site, "lena", "ssh-key").endswith(
        "by local-file method late-file (groups DEFAULT_GROUP)."
    )


def test_openssh_sftp_logs_in_with_the_key_listed_in_the_file(site: Site, tmp_path: Path) -> None:
    site.partners.replace(site.base())
    local = tmp_path / "order.csv"
    local.write_text("id,total\n7,99\n")

    result = site.ssh.sftp("olivia", [f"put {local} inbox/order.csv", "ls -1 inbox"])

    assert result.returncode == 0, result.stderr
    assert "order.csv" in result.stdout
    assert (site.partner_homes / "olivia" / "inbox" / "order.csv").read_text() == "id,total\n7,99\n"
    assert accepted(site, "olivia", "ssh-key").endswith(
        "by local-file method partners-file (groups partners)."
    )


# -- reconfiguration ------------------------------------------------------------------------------


async def test_a_new_poll_interval_applies_without_restarting_the_method(site: Site) -> None:
    stops = site.ssh.log.count("20157", "local-file partners-file stopped")
    extra = site.parts["extra"].replace(
        f"path = {site.partners.path}\n",
        f"path = {site.partners.path}\nchanges_poll_interval = 0.5\n",
    )
    assert extra != site.parts["extra"]

    site.ssh.reload(**{**site.parts, "extra": extra})

    assert site.ssh.log.count("20010") == 0, "the new configuration was refused"
    assert site.ssh.log.count("20157", "local-file partners-file stopped") == stops
    site.partners.replace(site.base(account_section("after-reload")))
    async with await site.ssh.connect("after-reload", password=PASSWORD):
        pass
    accepted(site, "after-reload", "password")
