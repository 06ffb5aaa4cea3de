"""OpenSSH ``scp``: the legacy SCP protocol (``scp -O``, needs ``scp = yes``) and the SFTP-based
default, checked on the server's disk and on the client's.

Event ids: 30067 download closed, 30068 upload published.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sshkit import SshServer, account_section

USERS = ("single", "tree", "times", "scp-jailed", "cut-eof", "cut-abort")
OLD = 1_000_000_000  # 2001-09-09, far from "now" so a preserved time cannot be a coincidence


@pytest.fixture(scope="module")
def server(module_ssh: Callable[[str], SshServer]) -> Iterator[SshServer]:
    """One ferryd with ``scp = yes``; each test uses its own account."""
    ssh = module_ssh("scp")
    reader = account_section(
        "scp-reader", options="permissions = allow-read, allow-list, allow-traverse"
    )
    ssh.start(
        accounts="".join(account_section(user) for user in USERS) + reader,
        service="scp = yes",
    )
    for user in USERS:
        ssh.home(user).mkdir(parents=True, exist_ok=True)
    yield ssh


@pytest.fixture(scope="module")
def plain_server(module_ssh: Callable[[str], SshServer]) -> Iterator[SshServer]:
    """A ferryd with the default ``scp = no``."""
    ssh = module_ssh("scp-off")
    ssh.start(accounts=account_section("plain"))
    yield ssh


def ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"scp failed: {result.stderr}"


def tree_of(folder: Path) -> dict[str, bytes | None]:
    """Relative path -> bytes (None for a folder), for every entry below ``folder``."""
    found: dict[str, bytes | None] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).as_posix()
        found[relative] = None if path.is_dir() else path.read_bytes()
    return found


def make_tree(folder: Path) -> Path:
    (folder / "a" / "b").mkdir(parents=True)
    (folder / "empty").mkdir()
    (folder / "top.txt").write_bytes(b"top\n")
    (folder / "a" / "mid.bin").write_bytes(os.urandom(200_000))
    (folder / "a" / "b" / "deep.txt").write_bytes(b"deep\n" * 1000)
    return folder


def test_scp_legacy_uploads_and_downloads_a_file_byte_for_byte(
    server: SshServer, tmp_path: Path
) -> None:
    local = tmp_path / "up.bin"
    local.write_bytes(os.urandom(654_321))
    back = tmp_path / "back.bin"

    ok(server.scp(str(local), server.target("single", "/up.bin")))
    ok(server.scp(server.target("single", "/up.bin"), str(back)))

    assert (server.home("single") / "up.bin").read_bytes() == local.read_bytes()
    assert back.read_bytes() == local.read_bytes()
    assert server.process is not None
    server.process.wait_for_event(server.log, "30068", "single uploaded /up.bin: 654321 bytes")
    server.process.wait_for_event(server.log, "30067", "single downloaded /up.bin: 654321 bytes")


def test_scp_legacy_recursive_copies_a_folder_tree_both_ways(
    server: SshServer, tmp_path: Path
) -> None:
    source = make_tree(tmp_path / "source")
    home = server.home("tree")

    ok(server.scp("-r", str(source), server.target("tree", "/uploaded")))

    assert tree_of(home / "uploaded") == tree_of(source)

    make_tree(home / "served")
    ok(server.scp("-r", server.target("tree", "/served"), str(tmp_path / "downloaded")))

    assert tree_of(tmp_path / "downloaded") == tree_of(home / "served")


def test_scp_legacy_p_preserves_mtime_and_mode_both_ways(server: SshServer, tmp_path: Path) -> None:
    home = server.home("times")
    local = tmp_path / "stamped.txt"
    local.write_bytes(b"old file\n")
    local.chmod(0o640)
    os.utime(local, (OLD, OLD))

    ok(server.scp("-p", str(local), server.target("times", "/stamped.txt")))

    on_disk = (home / "stamped.txt").stat()
    assert int(on_disk.st_mtime) == OLD
    assert stat.S_IMODE(on_disk.st_mode) == 0o640

    served = home / "served.txt"
    served.write_bytes(b"served\n")
    served.chmod(0o604)
    os.utime(served, (OLD + 12345, OLD + 12345))
    back = tmp_path / "served.txt"

    ok(server.scp("-p", server.target("times", "/served.txt"), str(back)))

    assert back.read_bytes() == b"served\n"
    assert int(back.stat().st_mtime) == OLD + 12345
    assert stat.S_IMODE(back.stat().st_mode) == 0o604


def test_scp_legacy_stays_in_the_jail_and_obeys_permissions(
    server: SshServer, tmp_path: Path
) -> None:
    sentinel = server.root / "sentinel"
    sentinel.mkdir()
    (sentinel / "secret.txt").write_bytes(b"outside\n")
    home = server.home("scp-jailed")
    os.symlink("../../sentinel", home / "rel_out")
    local = tmp_path / "up.txt"
    local.write_bytes(b"upload\n")
    remote_sources = [
        "/../../sentinel/secret.txt",
        "../../sentinel/secret.txt",
        str(sentinel / "secret.txt"),
        "rel_out/secret.txt",
        "rel_out",
    ]

    for index, source in enumerate(remote_sources):
        out = tmp_path / f"out-{index}"
        result = server.scp("-r", server.target("scp-jailed", source), str(out))
        assert result.returncode != 0, source
        assert not out.exists(), source
    for target in ["rel_out/planted.txt", "/../../sentinel/planted.txt", str(sentinel / "p.txt")]:
        result = server.scp(str(local), server.target("scp-jailed", target))
        assert result.returncode != 0, target
    denied = server.scp(str(local), server.target("scp-reader", "/up.txt"))

    assert denied.returncode != 0
    assert "permission denied" in denied.stderr
    assert not (server.home("scp-reader") / "up.txt").exists()
    assert sorted(os.listdir(sentinel)) == ["secret.txt"]
    assert sorted(os.listdir(home)) == ["rel_out"]
    assert sorted(os.listdir(server.root)) == sorted(["homes", "sentinel", "conf", "client_key"])


def test_without_scp_option_legacy_scp_is_refused(plain_server: SshServer, tmp_path: Path) -> None:
    local = tmp_path / "file.txt"
    local.write_bytes(b"via legacy scp\n")

    legacy = plain_server.scp(str(local), plain_server.target("plain", "/legacy.txt"))

    assert legacy.returncode != 0
    assert not (plain_server.home("plain") / "legacy.txt").exists()


def test_without_scp_option_sftp_based_scp_uploads_and_reports_success(
    plain_server: SshServer, tmp_path: Path
) -> None:
    local = tmp_path / "file.txt"
    local.write_bytes(b"via sftp\n")
    back = tmp_path / "back.txt"

    upload = plain_server.scp(str(local), plain_server.target("plain", "/modern.txt"), legacy=False)
    assert (plain_server.home("plain") / "modern.txt").read_bytes() == b"via sftp\n"
    download = plain_server.scp(
        plain_server.target("plain", "/modern.txt"), str(back), legacy=False
    )
    assert back.read_bytes() == b"via sftp\n"

    assert upload.returncode == 0, "scp reported a failure for an upload that worked"
    assert download.returncode == 0, "scp reported a failure for a download that worked"


@pytest.mark.parametrize("cut", ["eof", "abort"])
async def test_scp_upload_cut_short_is_not_published(server: SshServer, cut: str) -> None:
    """SCP announces the size, then sends the bytes: a client that stops early (its input
    ends, or the connection drops) left an incomplete file, which atomic mode never shows."""
    user = f"cut-{cut}"
    conn = await server.connect(user)
    process = await conn.create_process("scp -t /cut.bin", encoding=None)
    assert await process.stdout.readexactly(1) == b"\0"
    process.stdin.write(b"C0644 1000000 cut.bin\n")
    assert await process.stdout.readexactly(1) == b"\0"
    process.stdin.write(b"x" * 1000)
    await process.stdin.drain()
    if cut == "eof":
        process.stdin.write_eof()
        await process.stdout.read()  # the server answers and ends the session
    else:
        conn.abort()
        await conn.wait_closed()  # the blocking wait below would keep the loop from sending
    assert server.process is not None
    server.process.wait_for_event(server.log, "30042", f"/cut.bin by {user} failed")
    conn.close()
    assert not (server.home(user) / "cut.bin").exists(), "a cut SCP upload was published"
    assert not server.log.events("30068", "/cut.bin"), "reported as uploaded"


async def test_a_malformed_scp_command_gets_its_error_on_stderr_and_status_1(
    server: SshServer,
) -> None:
    """The SCP server's refusal goes out as extended data (stderr) before the exit status,
    through the same channel send buffer as the file data."""
    async with await server.connect("scp-reader") as conn:
        result = await conn.run("scp -Q /anything", check=False)
    assert result.exit_status == 1
    assert result.stdout == ""
    assert str(result.stderr).startswith("scp: "), result.stderr
