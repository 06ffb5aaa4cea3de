"""The jail, permissions, groups and virtual folders, attacked through the real SFTP protocol.

An asyncssh client sends the paths an attacker would; the server's disk is the judge. A
sentinel folder next to the home folders (a file, a sub-folder) is snapshotted before every
escape attempt and must be identical afterwards, so a request that "failed" but still wrote
outside the home is caught too.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest
from sshkit import SshServer, account_section

from ferryd.config.models.access import VERBS

SECRET = b"outside the jail\n"
JAIL_COPY = b"the jail's own etc/passwd\n"
DENIED = asyncssh.FX_PERMISSION_DENIED

GROUPS = """
[groups/grp-a]
home_folder_path = {root}/grp-a-homes/${{USER}}
create_home_folder = yes
permissions = allow-list, allow-traverse, allow-read

[groups/grp-b]
home_folder_path = {root}/grp-b-homes/${{USER}}
create_home_folder = yes
permissions = allow-full-control
    /drop/*, allow-full-control
virtual_folders = /b-shared, {root}/grp-b-shared
"""


def accounts(root: Path) -> str:
    sections = [account_section("jailed")]
    sections += [
        account_section(f"deny-{verb}", options=f"permissions = allow-full-control, deny-{verb}")
        for verb in VERBS
    ]
    sections.append(
        account_section(
            "inbox",
            options="permissions = allow-list, allow-traverse\n    /inbox/*, allow-full-control",
        )
    )
    sections.append(account_section("multi", options="group = grp-a, grp-b"))
    sections.append(
        account_section(
            "split",
            options="permissions = allow-full-control\n"
            "    /private, allow-list, allow-traverse\n"
            "    /private/*, allow-full-control, deny-read",
        )
    )
    sections.append(
        account_section("virt", options=f"virtual_folders = /shared, {root / 'shared-real'}")
    )
    sections.append(
        account_section(
            "renamer", options="permissions = allow-list, allow-traverse, allow-read, allow-rename"
        )
    )
    sections.append(
        account_section(
            "linker",
            options="permissions = allow-list, allow-traverse, allow-read, allow-write, "
            "allow-create-folder\n    /open/*, allow-full-control",
        )
    )
    return "".join(sections)


@pytest.fixture(scope="module")
def server(module_ssh: Callable[[str], SshServer]) -> Iterator[SshServer]:
    """One ferryd for the module. Next to ``homes`` lie the sentinel folder and the real
    folders behind virtual folders; every account has its own home."""
    ssh = module_ssh("jail")
    root = ssh.root
    sentinel = root / "sentinel"
    (sentinel / "sub").mkdir(parents=True)
    (sentinel / "secret.txt").write_bytes(SECRET)
    (sentinel / "sub" / "inner.txt").write_bytes(b"inner\n")
    for folder in ("shared-real", "grp-a-homes/multi/drop", "grp-b-shared"):
        (root / folder).mkdir(parents=True)
    (root / "grp-b-shared" / "notice.txt").write_bytes(b"from group b\n")
    ssh.start(accounts=accounts(root), extra=GROUPS.format(root=root))
    yield ssh


# -- helpers ----------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, tuple[object, ...]]:
    """Every entry below ``folder`` (links not followed): kind, mode, size, mtime, content."""
    found: dict[str, tuple[object, ...]] = {".": tuple(sorted(os.listdir(folder)))}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        content: bytes | str | None = None
        if stat.S_ISLNK(info.st_mode):
            content = os.readlink(path)
        elif stat.S_ISREG(info.st_mode):
            content = path.read_bytes()
        found[path.relative_to(folder).as_posix()] = (
            stat.S_IFMT(info.st_mode),
            stat.S_IMODE(info.st_mode),
            info.st_size,
            info.st_mtime_ns,
            info.st_nlink,
            content,
        )
    return found


@contextlib.contextmanager
def nothing_changes_outside(ssh: SshServer) -> Iterator[None]:
    """The sentinel tree, the folder holding the homes' parent, and /etc/passwd stay as they
    were (names, modes, sizes, times, link counts, contents)."""

    def state() -> tuple[object, ...]:
        passwd = os.stat("/etc/passwd")
        top = sorted(name for name in os.listdir(ssh.root) if name != "batch.txt")
        return snapshot(ssh.root / "sentinel"), top, (passwd.st_mtime_ns, passwd.st_size)

    before = state()
    yield
    assert state() == before, "something outside the home folder changed"


async def error_code(operation: Awaitable[object]) -> int:
    """The status code the request ``operation`` fails with."""
    with pytest.raises(asyncssh.SFTPError) as raised:
        await operation
    return int(raised.value.code)


@contextlib.asynccontextmanager
async def session(ssh: SshServer, user: str) -> AsyncIterator[asyncssh.SFTPClient]:
    async with await ssh.connect(user) as conn, conn.start_sftp_client() as sftp:
        yield sftp


async def read(sftp: asyncssh.SFTPClient, path: str) -> bytes:
    async with sftp.open(path, "rb") as opened:
        data: bytes = await opened.read()
        return data


async def write(sftp: asyncssh.SFTPClient, path: str, data: bytes) -> None:
    async with sftp.open(path, "wb") as opened:
        await opened.write(data)


def within(path: Path, folder: Path) -> bool:
    resolved, top = os.path.realpath(path), os.path.realpath(folder)
    return resolved == top or resolved.startswith(top + os.sep)


@pytest.fixture
def jailed_home(server: SshServer) -> Path:
    """``jailed``'s home with links planted on disk (by an administrator, another protocol,
    a restored backup) that lead outside: absolute to /etc, relative to the sentinel, and an
    absolute link to the secret file. ``/etc/passwd`` inside the jail is a decoy."""
    home = server.home("jailed")
    if not home.exists():
        (home / "etc").mkdir(parents=True)
        (home / "etc" / "passwd").write_bytes(JAIL_COPY)
        os.symlink("/etc", home / "abs_etc")
        os.symlink("../../sentinel", home / "rel_out")
        os.symlink(server.root / "sentinel" / "secret.txt", home / "secret_link")
    assert (home / "rel_out" / "secret.txt").read_bytes() == SECRET  # the links do lead out
    return home


# -- the jail ---------------------------------------------------------------------------


async def test_dot_dot_never_climbs_above_the_home(server: SshServer, jailed_home: Path) -> None:
    with nothing_changes_outside(server):
        async with session(server, "jailed") as sftp:
            assert await read(sftp, "/../../etc/passwd") == JAIL_COPY
            assert await read(sftp, "../../../../../../etc/passwd") == JAIL_COPY
            assert await read(sftp, "/etc/../../../etc/passwd") == JAIL_COPY
            assert await sftp.realpath("../../..") == "/"
            assert await sftp.listdir("../../..") == await sftp.listdir("/")
            await write(sftp, "/../../../dotdot.txt", b"stays home\n")

    assert (jailed_home / "dotdot.txt").read_bytes() == b"stays home\n"


async def test_absolute_host_paths_are_read_inside_the_jail(
    server: SshServer, jailed_home: Path
) -> None:
    sentinel = server.root / "sentinel"
    with nothing_changes_outside(server):
        async with session(server, "jailed") as sftp:
            missing = asyncssh.FX_NO_SUCH_FILE
            assert await error_code(sftp.open(str(sentinel / "secret.txt"), "rb")) == missing
            assert await error_code(sftp.listdir(str(sentinel))) == missing
            assert await error_code(sftp.open(str(sentinel / "planted.txt"), "wb")) == missing
            assert await error_code(sftp.remove(str(sentinel / "secret.txt"))) == missing
            assert await read(sftp, "/etc/passwd") == JAIL_COPY


@pytest.mark.parametrize(
    "path", ["abs_etc/passwd", "rel_out/secret.txt", "rel_out/sub/inner.txt", "secret_link"]
)
async def test_reading_through_a_planted_link_that_leads_outside_is_denied(
    server: SshServer, jailed_home: Path, path: str
) -> None:
    with nothing_changes_outside(server):
        async with session(server, "jailed") as sftp:
            assert await error_code(sftp.open(path, "rb")) == DENIED
            assert await error_code(sftp.stat(path)) == DENIED


async def test_changes_through_a_planted_link_that_leads_outside_are_denied(
    server: SshServer, jailed_home: Path
) -> None:
    with nothing_changes_outside(server):
        async with session(server, "jailed") as sftp:
            assert await error_code(sftp.listdir("rel_out")) == DENIED
            assert await error_code(sftp.listdir("abs_etc")) == DENIED
            assert await error_code(sftp.readlink("rel_out")) == DENIED
            assert await error_code(sftp.open("rel_out/planted.txt", "wb")) == DENIED
            assert await error_code(sftp.open("secret_link", "wb")) == DENIED
            assert await error_code(sftp.open("secret_link", "ab")) == DENIED
            assert await error_code(sftp.mkdir("rel_out/planted")) == DENIED
            assert await error_code(sftp.remove("rel_out/secret.txt")) == DENIED
            assert await error_code(sftp.rmdir("rel_out/sub")) == DENIED
            assert await error_code(sftp.rename("rel_out/secret.txt", "stolen.txt")) == DENIED
            assert await error_code(sftp.rename("/etc/passwd", "rel_out/dropped")) == DENIED
            assert await error_code(sftp.chmod("secret_link", 0o777)) == DENIED
            assert await error_code(sftp.chmod("rel_out/secret.txt", 0o777)) == DENIED
    assert not (jailed_home / "stolen.txt").exists()
    assert (jailed_home / "etc" / "passwd").read_bytes() == JAIL_COPY


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("dots", "/../../etc/passwd"),
        ("relative", "../../sentinel/secret.txt"),
        ("host", "{sentinel}/secret.txt"),
    ],
)
async def test_a_symlink_created_by_a_client_never_resolves_outside(
    server: SshServer, jailed_home: Path, name: str, target: str
) -> None:
    target = target.format(sentinel=server.root / "sentinel")
    link = jailed_home / f"made-{name}"
    with nothing_changes_outside(server):
        async with session(server, "jailed") as sftp:
            with contextlib.suppress(asyncssh.SFTPError):
                await sftp.symlink(target, link.name)
            if link.is_symlink():
                with contextlib.suppress(asyncssh.SFTPError):
                    assert await read(sftp, link.name) != SECRET

    assert not link.is_symlink() or within(link, jailed_home), os.readlink(link)


async def test_hard_link_to_a_file_outside_is_refused(server: SshServer, jailed_home: Path) -> None:
    secret = server.root / "sentinel" / "secret.txt"
    with nothing_changes_outside(server):
        async with session(server, "jailed") as sftp:
            assert await error_code(sftp.link(str(secret), "hard-1")) == asyncssh.FX_NO_SUCH_FILE
            assert await error_code(sftp.link("rel_out/secret.txt", "hard-2")) == DENIED
            assert await error_code(sftp.link("secret_link", "hard-3")) == DENIED
            assert await error_code(sftp.link("/etc/passwd", "rel_out/hard-4")) == DENIED

    assert not any(jailed_home.glob("hard-*"))
    assert secret.stat().st_nlink == 1


@pytest.mark.parametrize(
    "path",
    [
        "nul\x00.txt",
        "/../../\x00/etc/passwd",
        "n" * 4096,
        "n" * 256,
        "/".join(["d"] * 2100),
    ],
    ids=["nul", "nul-after-dots", "4096-byte-name", "256-byte-component", "4200-byte-path"],
)
async def test_bad_names_are_refused_and_create_nothing(
    server: SshServer, jailed_home: Path, path: str
) -> None:
    before = sorted(os.listdir(jailed_home))
    with nothing_changes_outside(server):
        async with session(server, "jailed") as sftp:
            await error_code(sftp.open(path, "wb"))
            await error_code(sftp.mkdir(path))
            await error_code(sftp.open(path, "rb"))

    assert sorted(os.listdir(jailed_home)) == before


async def test_a_newline_in_a_file_name_cannot_forge_audit_log_lines(
    server: SshServer, jailed_home: Path
) -> None:
    forged = "x\n30068 forged-admin uploaded /payroll.csv: 1 bytes in 0.1 seconds.\ny"
    ended = server.log.count("30012", containing="session of jailed ended")
    async with session(server, "jailed") as sftp:
        await error_code(sftp.open(forged, "rb"))
    assert server.process is not None
    server.process.wait_for_event(
        server.log, "30012", containing="session of jailed ended", count=ended + 1
    )

    assert server.log.count("30068", containing="forged-admin") == 0
    malformed = [line for line in server.log.lines() if not line[:6].rstrip().isdigit()]
    assert malformed == []


# -- permissions ------------------------------------------------------------------------

Operation = Callable[[asyncssh.SFTPClient], Awaitable[object]]


@dataclass(frozen=True)
class VerbCase:
    """For one verb: a request that needs it (denied, nothing changes on disk) and one that
    does not (it works and its effect is on disk)."""

    denied: Operation
    unchanged: Callable[[Path], bool]
    allowed: Operation
    happened: Callable[[Path], bool]


async def _mkdir(sftp: asyncssh.SFTPClient) -> None:
    await sftp.mkdir("new-folder")


async def _upload(sftp: asyncssh.SFTPClient) -> None:
    await write(sftp, "new.txt", b"new\n")


async def _read_file(sftp: asyncssh.SFTPClient) -> bytes:
    data = await read(sftp, "file.txt")
    assert data == b"file\n"
    return data


async def _listdir(sftp: asyncssh.SFTPClient) -> list[str]:
    names = list(await sftp.listdir("/"))
    assert "file.txt" in names
    return names


def _has(name: str) -> Callable[[Path], bool]:
    return lambda home: (home / name).exists()


def _lacks(name: str) -> Callable[[Path], bool]:
    return lambda home: not (home / name).exists()


def _file_intact(home: Path) -> bool:
    return (home / "file.txt").read_bytes() == b"file\n"


CASES = {
    "read": VerbCase(lambda s: s.open("file.txt", "rb"), _file_intact, _listdir, _file_intact),
    "list": VerbCase(lambda s: s.listdir("/"), _file_intact, _read_file, _file_intact),
    "traverse": VerbCase(lambda s: s.stat("file.txt"), _file_intact, _read_file, _file_intact),
    "create-folder": VerbCase(_mkdir, _lacks("new-folder"), _upload, _has("new.txt")),
    "write": VerbCase(_upload, _lacks("new.txt"), _mkdir, _has("new-folder")),
    "rename": VerbCase(
        lambda s: s.rename("file.txt", "renamed.txt"),
        lambda home: _file_intact(home) and _lacks("renamed.txt")(home),
        lambda s: s.remove("other.txt"),
        _lacks("other.txt"),
    ),
    "delete-file": VerbCase(
        lambda s: s.remove("file.txt"),
        _file_intact,
        lambda s: s.rename("other.txt", "renamed.txt"),
        _has("renamed.txt"),
    ),
    "delete-folder": VerbCase(
        lambda s: s.rmdir("folder"),
        _has("folder"),
        lambda s: s.remove("other.txt"),
        _lacks("other.txt"),
    ),
    "set-attributes": VerbCase(
        lambda s: s.chmod("file.txt", 0o600),
        lambda home: stat.S_IMODE((home / "file.txt").stat().st_mode) == 0o644,
        _upload,
        _has("new.txt"),
    ),
}


@pytest.mark.parametrize("verb", VERBS)
async def test_denying_one_verb_refuses_what_needs_it_and_allows_the_rest(
    server: SshServer, verb: str
) -> None:
    case = CASES[verb]
    home = server.home(f"deny-{verb}")
    home.mkdir(parents=True)
    (home / "file.txt").write_bytes(b"file\n")
    (home / "file.txt").chmod(0o644)
    (home / "other.txt").write_bytes(b"other\n")
    (home / "folder").mkdir()

    async with session(server, f"deny-{verb}") as sftp:
        assert await error_code(case.denied(sftp)) == DENIED
        assert case.unchanged(home), "a denied request changed the disk"
        await case.allowed(sftp)
    assert case.happened(home), "an allowed request had no effect"
    assert server.process is not None
    server.process.wait_for_event(
        server.log, "30041", containing=f"by deny-{verb} failed: permission denied"
    )


async def test_a_refused_fsetstat_on_an_open_upload_changes_nothing(server: SshServer) -> None:
    """Size, mode and times on the open handle need 'set-attributes' like a path setstat;
    a refusal comes before the file is truncated, not after."""
    home = server.home("deny-set-attributes")
    home.mkdir(parents=True, exist_ok=True)
    async with (
        session(server, "deny-set-attributes") as sftp,
        sftp.open("upload.txt", "wb") as remote,
    ):
        await remote.write(b"0123456789")
        attrs = asyncssh.SFTPAttrs(size=2, permissions=0o600)
        assert await error_code(remote.setstat(attrs)) == DENIED
        assert await error_code(remote.truncate(4)) == DENIED
        await remote.write(b"!", 10)
    assert (home / "upload.txt").read_bytes() == b"0123456789!"
    assert stat.S_IMODE((home / "upload.txt").stat().st_mode) != 0o600


async def test_a_hard_link_through_a_symlinked_folder_cannot_gain_set_attributes(
    server: SshServer,
) -> None:
    """/ro/file.txt may not have its attributes set; /open/* may. A link named through a
    symlink to /open is judged where it really lands, as a link named /open/... is."""
    home = server.home("linker")
    (home / "ro").mkdir(parents=True, exist_ok=True)
    (home / "open").mkdir(exist_ok=True)
    (home / "ro" / "file.txt").write_bytes(b"read-only rules\n")
    (home / "ro" / "file.txt").chmod(0o644)
    async with session(server, "linker") as sftp:
        assert await error_code(sftp.link("/ro/file.txt", "/open/direct")) == DENIED
        await sftp.symlink("/open", "/lnk")
        assert await error_code(sftp.link("/ro/file.txt", "/lnk/via-link")) == DENIED
        assert await error_code(sftp.chmod("/ro/file.txt", 0o600)) == DENIED
    assert not (home / "open" / "via-link").exists()
    assert (home / "ro" / "file.txt").stat().st_nlink == 1
    assert stat.S_IMODE((home / "ro" / "file.txt").stat().st_mode) == 0o644


async def test_replacing_by_rename_needs_what_overwriting_or_removing_would_need(
    server: SshServer,
) -> None:
    """'rename' alone moves entries; replacing an existing file also needs 'write' (as an
    upload over it would), replacing a folder 'delete-folder'."""
    home = server.home("renamer")
    home.mkdir(parents=True, exist_ok=True)
    (home / "a.txt").write_bytes(b"a\n")
    (home / "keep.txt").write_bytes(b"keep\n")
    (home / "empty").mkdir()
    (home / "folder").mkdir()
    async with session(server, "renamer") as sftp:
        assert await error_code(sftp.posix_rename("/a.txt", "/keep.txt")) == DENIED
        assert await error_code(sftp.posix_rename("/folder", "/empty")) == DENIED
        await sftp.posix_rename("/a.txt", "/moved.txt")
    assert (home / "keep.txt").read_bytes() == b"keep\n"
    assert (home / "moved.txt").read_bytes() == b"a\n"
    assert (home / "empty").is_dir() and (home / "folder").is_dir()


async def test_a_link_cannot_be_moved_where_its_relative_target_leaves_the_home(
    server: SshServer,
) -> None:
    """Links are stored relative to their folder: /a/b/l -> /a/x is ``../x``. Moved to the
    top it would name the folder above the home on disk, which other programs follow."""
    home = server.home("jailed")
    async with session(server, "jailed") as sftp:
        for folder in ("/a", "/a/b", "/a/c"):
            await sftp.mkdir(folder)
        await sftp.symlink("/a/x", "/a/b/l")
        assert os.readlink(home / "a" / "b" / "l") == "../x"
        with pytest.raises(asyncssh.SFTPError):
            await sftp.rename("/a/b/l", "/l")
        await sftp.rename("/a/b/l", "/a/c/l")  # still inside: /a/x from /a/c too
    assert not (home / "l").is_symlink()
    assert os.readlink(home / "a" / "c" / "l") == "../x"


async def test_path_rule_allows_uploads_into_inbox_but_not_into_the_root(
    server: SshServer,
) -> None:
    home = server.home("inbox")
    (home / "inbox").mkdir(parents=True)
    (home / "top.txt").write_bytes(b"top\n")

    async with session(server, "inbox") as sftp:
        await write(sftp, "/inbox/report.csv", b"a,b\n")
        await sftp.mkdir("/inbox/2026")
        assert sorted(await sftp.listdir("/")) == [".", "..", "inbox", "top.txt"]
        assert await error_code(sftp.open("/report.csv", "wb")) == DENIED
        assert await error_code(sftp.mkdir("/outbox")) == DENIED
        assert await error_code(sftp.open("/top.txt", "rb")) == DENIED

    assert (home / "inbox" / "report.csv").read_bytes() == b"a,b\n"
    assert (home / "inbox" / "2026").is_dir()
    assert sorted(os.listdir(home)) == ["inbox", "top.txt"]


async def test_links_cannot_borrow_the_rights_of_their_location(server: SshServer) -> None:
    """/private/* may not be read; a link elsewhere (planted or made by the client) or a hard
    link does not open it up."""
    home = server.home("split")
    (home / "private").mkdir(parents=True)
    (home / "private" / "salary.txt").write_bytes(b"confidential\n")
    os.symlink("private/salary.txt", home / "planted-link")

    async with session(server, "split") as sftp:
        assert await error_code(sftp.open("/private/salary.txt", "rb")) == DENIED
        assert await error_code(sftp.open("/planted-link", "rb")) == DENIED
        await sftp.symlink("/private/salary.txt", "/client-link")
        assert await error_code(sftp.open("/client-link", "rb")) == DENIED
        assert await error_code(sftp.link("/private/salary.txt", "/hard-link")) == DENIED
        await write(sftp, "/public.txt", b"public\n")
        assert await read(sftp, "/public.txt") == b"public\n"

    assert not (home / "hard-link").exists()


async def test_second_group_adds_rules_and_folders_while_primary_gives_home_and_globals(
    server: SshServer,
) -> None:
    root = server.root
    home = root / "grp-a-homes" / "multi"

    async with session(server, "multi") as sftp:
        assert "b-shared" in await sftp.listdir("/")
        assert await read(sftp, "/b-shared/notice.txt") == b"from group b\n"
        await write(sftp, "/drop/parcel.bin", b"parcel\n")
        # grp-a's global set (read-only) applies, not grp-b's allow-full-control.
        assert await error_code(sftp.open("/parcel.bin", "wb")) == DENIED
        assert await error_code(sftp.open("/b-shared/upload.txt", "wb")) == DENIED

    assert (home / "drop" / "parcel.bin").read_bytes() == b"parcel\n"
    assert not (root / "grp-b-homes").exists()
    assert sorted(os.listdir(root / "grp-b-shared")) == ["notice.txt"]
    assert server.process is not None
    server.process.wait_for_event(server.log, "20137", containing="multi authenticated")
    assert "(groups grp-a, grp-b)" in server.log.events("20137", containing="multi ")[-1]


async def test_virtual_folder_is_listed_receives_files_and_cannot_be_removed_or_renamed(
    server: SshServer,
) -> None:
    real = server.root / "shared-real"
    home = server.home("virt")

    async with session(server, "virt") as sftp:
        assert "shared" in await sftp.listdir("/")
        await write(sftp, "/shared/up.txt", b"into the real folder\n")
        assert await error_code(sftp.rmdir("/shared")) == DENIED
        assert await error_code(sftp.remove("/shared")) == DENIED
        assert await error_code(sftp.rename("/shared", "/moved")) == DENIED
        assert await error_code(sftp.posix_rename("/shared", "/moved")) == DENIED
        assert await sftp.listdir("/shared") == [".", "..", "up.txt"]
        assert await error_code(sftp.rmdir("/")) == DENIED
        assert await error_code(sftp.rename("/", "/home-moved")) == DENIED

    assert (real / "up.txt").read_bytes() == b"into the real folder\n"
    assert not (home / "shared").exists()
    assert not (home / "moved").exists()
