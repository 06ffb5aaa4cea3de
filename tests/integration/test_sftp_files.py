"""The real OpenSSH ``sftp`` client in batch mode against ferryd, checked on the server's disk.

Every command a user types is run through ``sftp -b`` (a failing command fails the batch), and
its effect is read back from the home folder on disk and from the audit log. Event ids: 30020
file opened for reading, 30021 file opened for writing, 30050 change (rename, delete, mkdir,
rmdir, setstat, symlink, link), 30067 download closed, 30068 upload published.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sshkit import SshServer, account_section

USERS = (
    "put",
    "bulk",
    "preserve",
    "get",
    "reput",
    "reget",
    "renamer",
    "folders",
    "lister",
    "modes",
    "links",
    "df",
    "opener",
)
TEMP_PREFIX = ".ferryd-upload."


@pytest.fixture(scope="module")
def server(module_ssh: Callable[[str], SshServer]) -> Iterator[SshServer]:
    """One ferryd for the module; each test logs in as its own account (its own home)."""
    ssh = module_ssh("sftp-files")
    ssh.start(accounts="".join(account_section(user) for user in USERS))
    for user in USERS:
        ssh.home(user).mkdir(parents=True, exist_ok=True)
    yield ssh


def run(ssh: SshServer, user: str, commands: list[str]) -> str:
    """Run the batch; every command must succeed. Returns what sftp printed."""
    result = ssh.sftp(user, commands)
    assert result.returncode == 0, f"sftp failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def random_file(folder: Path, name: str, size: int) -> Path:
    path = folder / name
    path.write_bytes(os.urandom(size))
    return path


def test_put_stores_exact_bytes_and_reports_the_upload_with_its_size(
    server: SshServer, tmp_path: Path
) -> None:
    local = random_file(tmp_path, "payload.bin", 1_234_567)

    run(server, "put", [f"put {local} /payload.bin", "mkdir /sub", f"put {local} /sub/copy.bin"])

    assert (server.home("put") / "payload.bin").read_bytes() == local.read_bytes()
    assert (server.home("put") / "sub" / "copy.bin").read_bytes() == local.read_bytes()
    server.wait_event("30068", "put uploaded /payload.bin: 1234567 bytes")
    server.wait_event("30068", "put uploaded /sub/copy.bin: 1234567 bytes")


def test_large_files_at_full_speed_arrive_and_come_back_exact(
    server: SshServer, tmp_path: Path
) -> None:
    """At full speed on loopback the server reads eight SSH packets at a time, which it
    hands to the SSH layer a packet's worth at a time: every byte must still land in
    order, with the client's default requests (255 KiB) and with 32 KiB ones."""
    local = random_file(tmp_path, "bulk.bin", 24 * 1024 * 1024 + 12345)
    back = tmp_path / "back.bin"

    run(server, "bulk", [f"put {local} /default.bin", f"get /default.bin {back}"])
    result = server.sftp("bulk", [f"put {local} /small-requests.bin"], "-B", "32768")
    assert result.returncode == 0, result.stderr

    home = server.home("bulk")
    assert (home / "default.bin").read_bytes() == local.read_bytes()
    assert (home / "small-requests.bin").read_bytes() == local.read_bytes()
    assert back.read_bytes() == local.read_bytes()


def test_put_and_get_with_p_preserve_mtime_and_mode(server: SshServer, tmp_path: Path) -> None:
    home = server.home("preserve")
    local = tmp_path / "stamped.txt"
    local.write_bytes(b"stamped\n")
    local.chmod(0o640)
    os.utime(local, (1_000_000_000, 1_000_000_000))
    served = home / "served.txt"
    served.write_bytes(b"served\n")
    served.chmod(0o604)
    os.utime(served, (1_100_000_000, 1_100_000_000))
    back = tmp_path / "served.txt"

    run(server, "preserve", [f"put -p {local} /stamped.txt", f"get -p /served.txt {back}"])

    uploaded = (home / "stamped.txt").stat()
    assert int(uploaded.st_mtime) == 1_000_000_000
    assert stat.S_IMODE(uploaded.st_mode) == 0o640
    assert int(back.stat().st_mtime) == 1_100_000_000
    assert stat.S_IMODE(back.stat().st_mode) == 0o604


def test_get_downloads_exact_bytes_and_reports_the_download_with_its_size(
    server: SshServer, tmp_path: Path
) -> None:
    original = random_file(server.home("get"), "report.bin", 777_777)
    local = tmp_path / "report.bin"

    run(server, "get", [f"get /report.bin {local}"])

    assert local.read_bytes() == original.read_bytes()
    server.wait_event("30067", "get downloaded /report.bin: 777777 bytes")


def test_a_download_and_an_upload_each_log_their_open_event_with_the_path(
    server: SshServer, tmp_path: Path
) -> None:
    (server.home("opener") / "invoice.txt").write_bytes(b"invoice 12\n")
    order = tmp_path / "order.csv"
    order.write_bytes(b"id,total\n1,42\n")

    run(
        server,
        "opener",
        [f"get /invoice.txt {tmp_path / 'invoice.txt'}", f"put {order} /order.csv"],
    )

    opened = server.wait_event("30020", "opener opened /invoice.txt")
    assert opened == "30020 opener opened /invoice.txt for reading."
    opened = server.wait_event("30021", "opener opened /order.csv")
    assert opened == "30021 opener opened /order.csv for writing."
    assert server.log.count("30021", "/invoice.txt") == 0, "a download opened for writing"


def test_reput_resumes_a_partial_upload_to_the_exact_content(
    server: SshServer, tmp_path: Path
) -> None:
    full = random_file(tmp_path, "full.bin", 1_000_000)
    first_half = tmp_path / "half.bin"
    first_half.write_bytes(full.read_bytes()[:400_000])

    run(server, "reput", [f"put {first_half} /resume.bin"])
    assert (server.home("reput") / "resume.bin").stat().st_size == 400_000
    run(server, "reput", [f"reput {full} /resume.bin"])

    assert (server.home("reput") / "resume.bin").read_bytes() == full.read_bytes()
    # Only the missing 600 000 bytes were sent the second time.
    server.wait_event("30068", "reput uploaded /resume.bin: 600000 bytes")


def test_reget_resumes_a_partial_download_to_the_exact_content(
    server: SshServer, tmp_path: Path
) -> None:
    original = random_file(server.home("reget"), "big.bin", 1_000_000)
    local = tmp_path / "big.bin"
    local.write_bytes(original.read_bytes()[:300_000])

    run(server, "reget", [f"reget /big.bin {local}"])

    assert local.read_bytes() == original.read_bytes()
    server.wait_event("30067", "reget downloaded /big.bin: 700000 bytes")


def test_rename_and_rm_change_the_disk_and_are_reported(server: SshServer) -> None:
    home = server.home("renamer")
    (home / "draft.txt").write_bytes(b"draft\n")

    run(server, "renamer", ["rename /draft.txt /final.txt"])

    assert not (home / "draft.txt").exists()
    assert (home / "final.txt").read_bytes() == b"draft\n"
    server.wait_event("30050", "renamer: rename /final.txt (from /draft.txt)")

    run(server, "renamer", ["rm /final.txt"])

    assert list(home.iterdir()) == []
    server.wait_event("30050", "renamer: delete /final.txt")


def test_mkdir_and_rmdir_change_the_disk_and_are_reported(server: SshServer) -> None:
    home = server.home("folders")

    run(server, "folders", ["mkdir /outbox", "mkdir /outbox/2026"])

    assert (home / "outbox" / "2026").is_dir()
    server.wait_event("30050", "folders: mkdir /outbox/2026")

    run(server, "folders", ["rmdir /outbox/2026"])

    assert (home / "outbox").is_dir()
    assert not (home / "outbox" / "2026").exists()
    server.wait_event("30050", "folders: rmdir /outbox/2026")


def test_ls_long_shows_names_and_sizes_but_never_temporary_upload_names(
    server: SshServer,
) -> None:
    home = server.home("lister")
    (home / "one.txt").write_bytes(b"x" * 1234)
    (home / "two.bin").write_bytes(b"y" * 98765)
    (home / "folder").mkdir()
    # What an upload in progress (or one left by a crash) leaves next to the final name.
    (home / f"{TEMP_PREFIX}vm.123.0123456789abcdef.three.bin").write_bytes(b"z" * 10)

    output = run(server, "lister", ["ls -la /"])

    sizes = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 9 and parts[0][0] in "-dl":
            sizes[parts[-1]] = int(parts[4])
    assert sizes["one.txt"] == 1234
    assert sizes["two.bin"] == 98765
    assert "folder" in sizes
    assert TEMP_PREFIX not in output
    assert "three.bin" not in output


def test_chmod_sets_the_mode_on_disk_and_is_reported(server: SshServer) -> None:
    home = server.home("modes")
    (home / "script.sh").write_bytes(b"#!/bin/sh\n")
    (home / "script.sh").chmod(0o644)

    output = run(server, "modes", ["chmod 751 /script.sh", "ls -l /script.sh"])

    assert stat.S_IMODE((home / "script.sh").stat().st_mode) == 0o751
    assert "-rwxr-x--x" in output
    server.wait_event("30050", "modes: setstat /script.sh (mode=0o751)")


def test_symlink_is_created_relative_and_downloads_its_target(
    server: SshServer, tmp_path: Path
) -> None:
    home = server.home("links")
    (home / "data").mkdir()
    (home / "data" / "target.txt").write_bytes(b"linked content\n")
    local = tmp_path / "through-link.txt"

    run(server, "links", ["symlink /data/target.txt /shortcut", f"get /shortcut {local}"])

    assert (home / "shortcut").is_symlink()
    assert os.readlink(home / "shortcut") == "data/target.txt"
    assert local.read_bytes() == b"linked content\n"
    server.wait_event("30050", "links: symlink /shortcut")


def test_ln_makes_a_hard_link_to_the_same_inode(server: SshServer) -> None:
    home = server.home("links")
    (home / "original.txt").write_bytes(b"one inode\n")

    run(server, "links", ["ln /original.txt /second-name.txt"])

    assert not (home / "second-name.txt").is_symlink()
    assert (home / "second-name.txt").stat().st_ino == (home / "original.txt").stat().st_ino
    assert (home / "original.txt").stat().st_nlink == 2
    server.wait_event("30050", "links: link /second-name.txt (to /original.txt)")


def test_df_reports_the_space_of_the_filesystem_holding_the_home(server: SshServer) -> None:
    output = run(server, "df", ["df /"])

    header, values = [line.split() for line in output.splitlines() if line.strip()][-2:]
    assert header[:3] == ["Size", "Used", "Avail"]
    space = os.statvfs(server.home("df"))
    assert int(values[0]) == space.f_blocks * space.f_frsize // 1024


async def test_server_umask_masks_what_clients_create(ssh: SshServer, tmp_path: Path) -> None:
    """``[server] umask = 077``: files and folders clients create are the server user's alone,
    whether the client sends a mode (OpenSSH: the local file's, 0777 for a folder) or none
    (asyncssh's defaults: the server's 0666 and 0777 apply, then the umask)."""
    text = ssh.ini(accounts=account_section("alice"))
    ssh.config.write(text.replace("[server]\n", "[server]\numask = 077\n", 1))
    ssh.start()
    local = tmp_path / "shared.csv"
    local.write_bytes(b"a,b\n")
    local.chmod(0o666)

    run(ssh, "alice", [f"put {local} /openssh.csv", "mkdir /openssh-folder"])
    async with await ssh.connect("alice") as conn, conn.start_sftp_client() as sftp:
        async with sftp.open("/asyncssh.csv", "wb") as remote:
            await remote.write(b"a,b\n")
        await sftp.mkdir("/asyncssh-folder")

    home = ssh.home("alice")
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in home.iterdir()}
    assert modes == {
        "openssh.csv": 0o600,
        "asyncssh.csv": 0o600,
        "openssh-folder": 0o700,
        "asyncssh-folder": 0o700,
    }
    assert stat.S_IMODE(home.stat().st_mode) == 0o700, "the home created at the first login"


async def test_asyncssh_client_downloads_whole_and_sparse_files(
    ssh: SshServer, tmp_path: Path
) -> None:
    """asyncssh's ``get`` first asks where the file has data (``ranges@asyncssh.com``, which
    asyncssh's server answers by seeking the open file): a plain file and one with a hole
    both arrive exactly, the hole read back as zeros."""
    ssh.start(accounts=account_section("alice"))
    home = ssh.home("alice")
    home.mkdir(parents=True, exist_ok=True)
    plain = os.urandom(300_000)
    (home / "plain.bin").write_bytes(plain)
    with (home / "sparse.bin").open("wb") as sparse:
        sparse.write(b"head")
        sparse.seek(4 * 1024 * 1024)
        sparse.write(b"tail")
    async with await ssh.connect("alice") as conn, conn.start_sftp_client() as sftp:
        await sftp.get("plain.bin", str(tmp_path / "plain.bin"))
        await sftp.get("sparse.bin", str(tmp_path / "sparse.bin"))
    assert (tmp_path / "plain.bin").read_bytes() == plain
    assert (tmp_path / "sparse.bin").read_bytes() == (home / "sparse.bin").read_bytes()
