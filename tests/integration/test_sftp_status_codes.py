"""SFTP status codes and extensions, as an asyncssh client sees them over the real protocol.

ferryd speaks SFTP version 3, whose status codes stop at 8 (``FX_OP_UNSUPPORTED``): an
error without a v3 code (file exists, folder not empty...) reaches a v3 client as
``FX_FAILURE``. Each test asserts the exact ``SFTPError.code`` and that nothing changed on disk.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncssh
import pytest
from sshkit import SshServer, account_section

READER_PERMISSIONS = "permissions = allow-read, allow-list, allow-traverse"


@pytest.fixture(scope="module")
def server(module_ssh: Callable[[str], SshServer]) -> Iterator[SshServer]:
    """One ferryd: ``coder`` has full control, ``reader`` may only read, list and traverse."""
    ssh = module_ssh("status-codes")
    accounts = account_section("coder") + account_section("reader", options=READER_PERMISSIONS)
    ssh.start(accounts=accounts)
    yield ssh


@pytest.fixture
def home(server: SshServer, request: pytest.FixtureRequest) -> Path:
    """A fresh folder in coder's home for this test (``/<test name>`` on the client side)."""
    name: str = request.node.name
    folder = server.home("coder") / name.replace("[", "-").rstrip("]")
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
async def sftp(server: SshServer, home: Path) -> AsyncIterator[asyncssh.SFTPClient]:
    """coder's SFTP session, its working folder set to this test's folder."""
    async with await server.connect("coder") as conn, conn.start_sftp_client() as client:
        await client.chdir("/" + home.name)
        yield client


async def error_code(operation: Awaitable[object]) -> int:
    """The status code the request ``operation`` fails with."""
    with pytest.raises(asyncssh.SFTPError) as raised:
        await operation
    return int(raised.value.code)


async def test_server_answers_with_sftp_version_3_even_when_6_is_offered(
    server: SshServer,
) -> None:
    async with (
        await server.connect("coder") as conn,
        conn.start_sftp_client(sftp_version=6) as sftp,
    ):
        assert sftp.version == 3


async def test_opening_a_missing_file_is_no_such_file(
    sftp: asyncssh.SFTPClient, home: Path
) -> None:
    assert await error_code(sftp.open("missing.txt", "rb")) == asyncssh.FX_NO_SUCH_FILE
    assert await error_code(sftp.stat("missing/deeper.txt")) == asyncssh.FX_NO_SUCH_FILE


async def test_removing_a_missing_file_is_no_such_file(
    sftp: asyncssh.SFTPClient, home: Path
) -> None:
    assert await error_code(sftp.remove("missing.txt")) == asyncssh.FX_NO_SUCH_FILE


async def test_read_only_account_gets_permission_denied_for_changes_but_can_read(
    server: SshServer,
) -> None:
    home = server.home("reader")
    home.mkdir(parents=True, exist_ok=True)
    (home / "readme.txt").write_bytes(b"read me\n")

    async with await server.connect("reader") as conn, conn.start_sftp_client() as sftp:
        async with sftp.open("readme.txt", "rb") as readable:
            data: object = await readable.read()
        assert data == b"read me\n"
        assert await sftp.listdir("/") == [".", "..", "readme.txt"]
        denied = asyncssh.FX_PERMISSION_DENIED
        assert await error_code(sftp.open("new.txt", "wb")) == denied
        assert await error_code(sftp.open("readme.txt", "ab")) == denied
        assert await error_code(sftp.mkdir("folder")) == denied
        assert await error_code(sftp.remove("readme.txt")) == denied
        assert await error_code(sftp.rename("readme.txt", "moved.txt")) == denied
        assert await error_code(sftp.chmod("readme.txt", 0o600)) == denied

    assert sorted(p.name for p in home.iterdir()) == ["readme.txt"]
    assert (home / "readme.txt").read_bytes() == b"read me\n"


async def test_mkdir_of_an_existing_folder_is_failure_for_v3(
    sftp: asyncssh.SFTPClient, home: Path
) -> None:
    (home / "there").mkdir()
    (home / "there" / "kept.txt").write_bytes(b"kept\n")

    assert await error_code(sftp.mkdir("there")) == asyncssh.FX_FAILURE

    assert (home / "there" / "kept.txt").read_bytes() == b"kept\n"


async def test_rmdir_of_a_non_empty_folder_is_failure_and_keeps_it(
    sftp: asyncssh.SFTPClient, home: Path
) -> None:
    (home / "full").mkdir()
    (home / "full" / "inside.txt").write_bytes(b"inside\n")

    assert await error_code(sftp.rmdir("full")) == asyncssh.FX_FAILURE

    assert (home / "full" / "inside.txt").read_bytes() == b"inside\n"


async def test_plain_rename_onto_an_existing_file_is_failure_and_changes_nothing(
    sftp: asyncssh.SFTPClient, home: Path
) -> None:
    (home / "source.txt").write_bytes(b"source\n")
    (home / "target.txt").write_bytes(b"target\n")

    assert await error_code(sftp.rename("source.txt", "target.txt")) == asyncssh.FX_FAILURE

    assert (home / "source.txt").read_bytes() == b"source\n"
    assert (home / "target.txt").read_bytes() == b"target\n"


async def test_posix_rename_replaces_an_existing_file(
    sftp: asyncssh.SFTPClient, home: Path
) -> None:
    (home / "source.txt").write_bytes(b"source\n")
    (home / "target.txt").write_bytes(b"target\n")

    await sftp.posix_rename("source.txt", "target.txt")

    assert sorted(p.name for p in home.iterdir()) == ["target.txt"]
    assert (home / "target.txt").read_bytes() == b"source\n"


async def test_exclusive_create_of_an_existing_file_is_failure_and_keeps_it(
    sftp: asyncssh.SFTPClient, home: Path
) -> None:
    (home / "taken.txt").write_bytes(b"first\n")

    assert await error_code(sftp.open("taken.txt", "xb")) == asyncssh.FX_FAILURE

    assert (home / "taken.txt").read_bytes() == b"first\n"


async def test_opening_a_folder_for_reading_is_failure(
    sftp: asyncssh.SFTPClient, home: Path
) -> None:
    (home / "folder").mkdir()

    assert await error_code(sftp.open("folder", "rb")) == asyncssh.FX_FAILURE


async def test_statvfs_extension_reports_the_home_filesystem(
    sftp: asyncssh.SFTPClient, home: Path
) -> None:
    remote = await sftp.statvfs(".")

    local = os.statvfs(home)
    assert remote.blocks == local.f_blocks
    assert remote.frsize == local.f_frsize
    assert remote.namemax == local.f_namemax


async def test_fstatvfs_extension_reports_the_filesystem_of_an_open_file(
    sftp: asyncssh.SFTPClient, home: Path
) -> None:
    (home / "open.txt").write_bytes(b"open\n")

    async with sftp.open("open.txt", "rb") as opened:
        remote = await opened.statvfs()

    assert remote.blocks == os.statvfs(home).f_blocks


async def test_lsetstat_extension_changes_the_link_times_not_the_target(
    sftp: asyncssh.SFTPClient, home: Path
) -> None:
    (home / "target.txt").write_bytes(b"target\n")
    os.symlink("target.txt", home / "link")
    target_mtime = (home / "target.txt").stat().st_mtime_ns

    await sftp.utime("link", (1_000_000_000, 1_000_000_000), follow_symlinks=False)

    assert os.lstat(home / "link").st_mtime == 1_000_000_000
    assert (home / "target.txt").stat().st_mtime_ns == target_mtime


async def test_hardlink_extension_links_the_same_inode(
    sftp: asyncssh.SFTPClient, home: Path
) -> None:
    (home / "original.txt").write_bytes(b"original\n")

    await sftp.link("original.txt", "linked.txt")

    assert (home / "linked.txt").stat().st_ino == (home / "original.txt").stat().st_ino


async def test_fsync_extension_is_accepted_on_a_file_being_written(
    sftp: asyncssh.SFTPClient, home: Path
) -> None:
    upload = await sftp.open("synced.bin", "wb")
    await upload.write(b"durable\n")

    await upload.fsync()
    await upload.close()

    assert (home / "synced.bin").read_bytes() == b"durable\n"


async def test_limits_extension_announces_read_and_write_sizes(
    sftp: asyncssh.SFTPClient, home: Path
) -> None:
    limits = sftp.limits

    assert limits.max_read_len > 0
    assert limits.max_write_len > 0
    data = os.urandom(limits.max_write_len)
    async with sftp.open("large-write.bin", "wb") as upload:
        await upload.write(data)
    assert (home / "large-write.bin").read_bytes() == data


async def test_copy_data_extension_copies_on_the_server(
    sftp: asyncssh.SFTPClient, home: Path
) -> None:
    data = os.urandom(300_000)
    (home / "source.bin").write_bytes(data)
    assert sftp.supports_remote_copy

    async with sftp.open("source.bin", "rb") as source, sftp.open("copy.bin", "wb") as target:
        await sftp.remote_copy(source, target)

    assert (home / "copy.bin").read_bytes() == data
    assert (home / "source.bin").read_bytes() == data


async def test_truncating_to_zero_is_reported_with_its_size(
    server: SshServer, sftp: asyncssh.SFTPClient, home: Path
) -> None:
    (home / "log.txt").write_bytes(b"old lines\n")

    await sftp.truncate("log.txt", 0)

    assert (home / "log.txt").read_bytes() == b""
    server.wait_event("30050", f"coder: setstat /{home.name}/log.txt (size=0)")


async def test_fsetstat_on_a_download_changes_the_open_file_not_what_now_has_its_name(
    server: SshServer, sftp: asyncssh.SFTPClient, home: Path
) -> None:
    (home / "report.csv").write_bytes(b"v1\n")
    (home / "report.csv").chmod(0o644)
    async with sftp.open("report.csv", "rb") as remote:
        # Another session replaces the file while this one holds it open.
        (home / "report.csv").rename(home / "report-v1.csv")
        (home / "report.csv").write_bytes(b"v2\n")
        (home / "report.csv").chmod(0o644)
        await remote.chmod(0o600)
    assert stat.S_IMODE((home / "report-v1.csv").stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "report.csv").stat().st_mode) == 0o644
    server.wait_event("30050", f"coder: setstat /{home.name}/report.csv (mode=0o600)")


async def test_fsetstat_on_a_download_needs_set_attributes(server: SshServer) -> None:
    async with await server.connect("reader") as conn, conn.start_sftp_client() as sftp:
        home = server.home("reader")
        (home / "readable.txt").write_bytes(b"x\n")
        (home / "readable.txt").chmod(0o644)
        async with sftp.open("/readable.txt", "rb") as remote:
            assert await error_code(remote.chmod(0o600)) == asyncssh.FX_PERMISSION_DENIED
    assert stat.S_IMODE((home / "readable.txt").stat().st_mode) == 0o644
