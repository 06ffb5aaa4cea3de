"""Uploads cut in the middle, watched from the server's disk: what survives under which name.

A real OpenSSH ``sftp`` (and the ``ssh`` it spawns, in their own process group) uploads a
100 MiB file, throttled with ``-l`` so the test can catch it half way; once the hidden
temporary file (``.ferryd-upload.*``) has grown past 10 MiB the whole group is killed with
SIGKILL, as a crashing client would be. Event ids: 30042 upload failed, 30067 download
closed, 30068 upload published.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import struct
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest
from sshkit import SshServer, account_section

MIB = 1024 * 1024
BIG = 100 * MIB
CUT_AFTER = 10 * MIB
TEMP_PREFIX = ".ferryd-upload."
# Kbit/s for ``sftp -l``: about 20 MB/s, so 10 MiB arrive in half a second and 100 MiB would
# take five; the kill always lands in the middle.
THROTTLE = "160000"

GROUPS = """
[groups/resumable]
home_folder_path = {homes}/${{USER}}
create_home_folder = yes
upload_mode = atomic-resumable

[groups/limited]
home_folder_path = {homes}/${{USER}}
create_home_folder = yes
file_write_size = 1048576
"""


@pytest.fixture(scope="module")
def server(module_ssh: Callable[[str], SshServer]) -> Iterator[SshServer]:
    """One ferryd for the module; every test uses its own account (its own home folder)."""
    ssh = module_ssh("uploads")
    accounts = "".join(
        [
            account_section("atomic"),
            account_section("watched"),
            account_section("replacer"),
            account_section("keeper"),
            account_section("racer"),
            account_section("resumable", options="group = resumable"),
            account_section("limited", options="group = limited"),
            account_section("cut-atomic"),
            account_section("cut-resumable", options="group = resumable"),
            account_section("cut-taken", options="group = resumable"),
        ]
    )
    ssh.start(accounts=accounts, extra=GROUPS.format(homes=ssh.homes))
    yield ssh


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 MiB of random bytes, so any misplaced or missing block shows in a comparison."""
    path = tmp_path_factory.mktemp("big") / "big.bin"
    path.write_bytes(os.urandom(BIG))
    return path


def temporaries(folder: Path) -> list[Path]:
    return (
        [p for p in folder.iterdir() if p.name.startswith(TEMP_PREFIX)] if folder.is_dir() else []
    )


def start_upload(ssh: SshServer, user: str, local: Path, remote: str) -> subprocess.Popen[bytes]:
    """A throttled OpenSSH ``sftp -b`` upload, in its own process group (sftp plus its ssh)."""
    batch = ssh.root / f"batch-{user}.txt"
    batch.write_text(f"put {local} {remote}\n")
    return subprocess.Popen(
        [
            "sftp",
            "-P",
            str(ssh.port),
            "-l",
            THROTTLE,
            *ssh.ssh_options(),
            "-b",
            str(batch),
            f"{user}@127.0.0.1",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_for_partial(ssh: SshServer, client: subprocess.Popen[bytes], folder: Path) -> Path:
    """The temporary file of the upload under way, once it holds more than CUT_AFTER bytes."""

    def grown() -> Path | None:
        assert client.poll() is None, "the upload ended before it could be interrupted"
        for temp in temporaries(folder):
            try:
                if temp.stat().st_size > CUT_AFTER:
                    return temp
            except FileNotFoundError:
                continue
        return None

    assert ssh.process is not None
    found = ssh.process.wait_until(grown, "the temporary upload file to pass 10 MiB", timeout=30)
    assert found is not None
    return found


def kill_client(client: subprocess.Popen[bytes]) -> None:
    """SIGKILL sftp and the ssh it spawned: no goodbye reaches the server."""
    os.killpg(client.pid, signal.SIGKILL)
    client.wait(timeout=10)


@pytest.fixture
def uploads() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Clients a test starts; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for client in started:
        if client.poll() is None:
            kill_client(client)


@dataclass
class CutUpload:
    """A throttled upload caught in the middle, still running (kill it with kill_client)."""

    home: Path
    sessions: int  # the user's 30012 (session ended) lines before the upload started
    client: subprocess.Popen[bytes]
    temp: Path  # its temporary file, past CUT_AFTER bytes


def cut_upload(
    ssh: SshServer,
    user: str,
    local: Path,
    remote: str,
    uploads: list[subprocess.Popen[bytes]],
    existing: dict[str, bytes] | None = None,
) -> CutUpload:
    """Start ``user``'s upload of ``local`` as ``remote`` (the home holding ``existing``
    files first) and wait until its temporary file has passed CUT_AFTER bytes."""
    home = ssh.home(user)
    home.mkdir(parents=True, exist_ok=True)
    for name, data in (existing or {}).items():
        (home / name).write_bytes(data)
    sessions = ssh.log.count("30012", containing=f"session of {user} ended")
    client = start_upload(ssh, user, local, remote)
    uploads.append(client)
    return CutUpload(home, sessions, client, wait_for_partial(ssh, client, home))


def wait_for_session_end(ssh: SshServer, user: str, before: int) -> None:
    """The server noticed the cut: one more 30012 (session ended) for ``user``."""
    assert ssh.process is not None
    ssh.process.wait_for_event(
        ssh.log, "30012", containing=f"session of {user} ended", count=before + 1
    )


def assert_still_serving(ssh: SshServer, user: str, tmp_path: Path) -> None:
    """A new client right after the cut: an upload and a download with exact bytes."""
    payload = tmp_path / "after.bin"
    payload.write_bytes(os.urandom(300_000))
    back = tmp_path / "after-back.bin"
    result = ssh.sftp(user, [f"put {payload} /after.bin", f"get /after.bin {back}"])
    assert result.returncode == 0, result.stderr
    assert (ssh.home(user) / "after.bin").read_bytes() == payload.read_bytes()
    assert back.read_bytes() == payload.read_bytes()


def test_killed_atomic_upload_leaves_nothing_and_server_keeps_serving(
    server: SshServer, big_file: Path, uploads: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    upload = cut_upload(server, "atomic", big_file, "/big.bin", uploads)
    home = upload.home
    assert upload.temp.name.endswith(".big.bin")
    assert not (home / "big.bin").exists(), "an atomic upload showed its final name early"

    kill_client(upload.client)

    wait_for_session_end(server, "atomic", upload.sessions)
    assert_still_serving(server, "atomic", tmp_path)
    assert not (home / "big.bin").exists(), "a cut atomic upload was published"
    assert temporaries(home) == []
    assert server.log.count("30042", containing="/big.bin by atomic") == 1
    assert server.log.count("30068", containing="atomic uploaded /big.bin") == 0


async def test_upload_in_progress_is_invisible_and_untouchable_from_another_session(
    server: SshServer, big_file: Path, uploads: list[subprocess.Popen[bytes]]
) -> None:
    existing = {"before.txt": b"already here\n"}
    upload = cut_upload(server, "watched", big_file, "/incoming.bin", uploads, existing)
    home, client, temp = upload.home, upload.client, upload.temp

    listing = server.sftp("watched", ["ls -la /"])
    async with await server.connect("watched") as conn, conn.start_sftp_client() as sftp:
        names = await sftp.listdir("/")
        missing = asyncssh.FX_NO_SUCH_FILE
        for attempt in (
            sftp.open(temp.name, "rb"),
            sftp.open(temp.name, "wb"),
            sftp.remove(temp.name),
            sftp.rename(temp.name, "stolen.bin"),
            sftp.stat(temp.name),
        ):
            with pytest.raises(asyncssh.SFTPError) as raised:
                await attempt
            assert raised.value.code == missing

    assert listing.returncode == 0, listing.stderr
    assert "before.txt" in listing.stdout, "the listing itself did not work"
    assert "incoming.bin" not in listing.stdout
    assert TEMP_PREFIX not in listing.stdout
    assert names == [".", "..", "before.txt"]
    assert temp.exists()
    assert not (home / "stolen.bin").exists()
    assert client.poll() is None, "the upload ended before the checks were done"


def test_killed_resumable_upload_is_published_as_prefix_and_reput_completes_it(
    server: SshServer, big_file: Path, uploads: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    upload = cut_upload(server, "resumable", big_file, "/big.bin", uploads)
    home = upload.home

    kill_client(upload.client)

    wait_for_session_end(server, "resumable", upload.sessions)
    partial = (home / "big.bin").read_bytes()
    assert CUT_AFTER < len(partial) < BIG
    with big_file.open("rb") as source:
        assert partial == source.read(len(partial)), "the published part is not a prefix"
    assert temporaries(home) == []

    resumed = server.sftp("resumable", [f"reput {big_file} /big.bin"])

    assert resumed.returncode == 0, resumed.stderr
    assert (home / "big.bin").read_bytes() == big_file.read_bytes()
    assert server.process is not None
    server.process.wait_for_event(server.log, "30068", containing="resumable uploaded /big.bin")
    assert_still_serving(server, "resumable", tmp_path)


def test_upload_over_file_write_size_fails_and_leaves_nothing(
    server: SshServer, tmp_path: Path
) -> None:
    home = server.home("limited")
    at_limit = tmp_path / "at-limit.bin"
    at_limit.write_bytes(os.urandom(MIB))
    over = tmp_path / "over.bin"
    over.write_bytes(os.urandom(2 * MIB))

    accepted = server.sftp("limited", [f"put {at_limit} /at-limit.bin"])
    refused = server.sftp("limited", [f"put {over} /over.bin"])

    assert accepted.returncode == 0, accepted.stderr
    assert (home / "at-limit.bin").read_bytes() == at_limit.read_bytes()
    assert refused.returncode != 0
    assert server.process is not None
    server.process.wait_for_event(server.log, "30042", containing="/over.bin by limited")
    assert sorted(p.name for p in home.iterdir()) == ["at-limit.bin"]


@pytest.mark.parametrize("user", ["cut-atomic", "cut-resumable"])
async def test_connection_cut_during_upload_is_reported_as_failed_upload(
    server: SshServer, user: str
) -> None:
    sessions = server.log.count("30012", containing=f"session of {user} ended")
    conn = await server.connect(user)
    sftp = await conn.start_sftp_client()
    upload = await sftp.open("/cut.bin", "wb")
    await upload.write(b"x" * 65536)

    conn.abort()
    await conn.wait_closed()

    wait_for_session_end(server, user, sessions)
    assert server.log.count("30042", containing=f"/cut.bin by {user}") == 1
    assert server.log.count("30068", containing=f"{user} uploaded /cut.bin") == 0
    published = server.home(user) / "cut.bin"
    if user == "cut-atomic":
        assert not published.exists()
    else:
        assert published.read_bytes() == b"x" * 65536


async def test_a_cut_upload_that_cannot_be_published_is_reported_and_the_session_still_ends(
    server: SshServer,
) -> None:
    """An exclusive resumable upload whose name was taken meanwhile cannot publish its part;
    that is reported on the file, and the other open files are still cleaned up."""
    user = "cut-taken"
    sessions = server.log.count("30012", containing=f"session of {user} ended")
    conn = await server.connect(user)
    sftp = await conn.start_sftp_client()
    first = await sftp.open("/taken.bin", "xb")  # exclusive: must not replace a file
    await first.write(b"mine")
    second = await sftp.open("/other.bin", "wb")
    await second.write(b"other")
    (server.home(user) / "taken.bin").write_bytes(b"someone else's")

    conn.abort()
    await conn.wait_closed()

    wait_for_session_end(server, user, sessions)
    (failed,) = server.log.events("30042", containing=f"/taken.bin by {user}")
    assert "cleaning it up failed" in failed
    assert server.log.count("30042", containing=f"/other.bin by {user}") == 1
    assert (server.home(user) / "taken.bin").read_bytes() == b"someone else's"
    assert (server.home(user) / "other.bin").read_bytes() == b"other"
    assert temporaries(server.home(user)) == []


def test_replacing_a_file_keeps_the_previous_version_readable_during_the_upload(
    server: SshServer, big_file: Path, uploads: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    previous = os.urandom(3 * MIB)
    existing = {"data.bin": previous}
    upload = cut_upload(server, "replacer", big_file, "/data.bin", uploads, existing)
    home, client = upload.home, upload.client
    local = tmp_path / "during.bin"

    result = server.sftp("replacer", [f"get /data.bin {local}", "ls -l /data.bin"])

    assert result.returncode == 0, result.stderr
    assert local.read_bytes() == previous
    assert str(len(previous)) in result.stdout
    assert (home / "data.bin").read_bytes() == previous
    assert client.poll() is None, "the upload ended before the checks were done"


def test_killed_upload_replacing_a_file_keeps_the_previous_version(
    server: SshServer, big_file: Path, uploads: list[subprocess.Popen[bytes]]
) -> None:
    previous = os.urandom(3 * MIB)
    upload = cut_upload(server, "keeper", big_file, "/data.bin", uploads, {"data.bin": previous})
    home = upload.home

    kill_client(upload.client)

    wait_for_session_end(server, "keeper", upload.sessions)
    assert (home / "data.bin").read_bytes() == previous, "a cut upload replaced the file"
    assert temporaries(home) == []


async def test_concurrent_uploads_of_one_name_publish_one_whole_file(server: SshServer) -> None:
    home = server.home("racer")
    first, second = os.urandom(500_000), os.urandom(400_000)
    async with (
        await server.connect("racer") as conn,
        conn.start_sftp_client() as one,
        conn.start_sftp_client() as two,
    ):
        a = await one.open("/same.bin", "wb")
        b = await two.open("/same.bin", "wb")
        await a.write(first[:250_000])
        await b.write(second)
        await a.write(first[250_000:], 250_000)
        await b.close()
        assert (home / "same.bin").read_bytes() == second
        await a.close()

        assert (home / "same.bin").read_bytes() == first

        exclusive = await one.open("/fresh.bin", "xb")
        await exclusive.write(b"exclusive\n")
        async with two.open("/fresh.bin", "wb") as other:
            await other.write(b"other\n")
        with pytest.raises(asyncssh.SFTPError):
            await exclusive.close()

    assert (home / "fresh.bin").read_bytes() == b"other\n"
    assert temporaries(home) == []


def _sftp_packet(kind: int, body: bytes) -> bytes:
    return struct.pack(">IB", len(body) + 1, kind) + body


def _sftp_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


async def _sftp_reply(reader: asyncssh.SSHReader[bytes]) -> tuple[int, bytes]:
    (length,) = struct.unpack(">I", await reader.readexactly(4))
    body = await reader.readexactly(length)
    return body[0], body[1:]


async def test_a_close_pipelined_with_the_end_of_the_session_is_answered_truthfully(
    server: SshServer,
) -> None:
    """A client may send its writes, CLOSE and end of input without waiting: if the CLOSE is
    answered OK, the file is published whole; if it is not, nothing is published."""
    user, chunk, count = "atomic", os.urandom(32768), 64
    for attempt in range(3):
        name = f"/piped-{attempt}.bin"
        async with await server.connect(user) as conn:
            writer, reader, _ = await conn.open_session(subsystem="sftp", encoding=None)
            writer.write(_sftp_packet(1, struct.pack(">I", 3)))  # INIT, version 3
            assert (await _sftp_reply(reader))[0] == 2  # VERSION
            flags = 0x02 | 0x08 | 0x10  # WRITE | CREAT | TRUNC
            writer.write(
                _sftp_packet(
                    3,
                    struct.pack(">I", 1)
                    + _sftp_string(name.encode())
                    + struct.pack(">II", flags, 0),
                )
            )
            kind, body = await _sftp_reply(reader)
            assert kind == 102, body  # HANDLE
            handle = body[4 + 4 :]
            for index in range(count):
                writer.write(
                    _sftp_packet(
                        6,
                        struct.pack(">I", 10 + index)
                        + _sftp_string(handle)
                        + struct.pack(">Q", index * len(chunk))
                        + _sftp_string(chunk),
                    )
                )
            writer.write(_sftp_packet(4, struct.pack(">I", 9) + _sftp_string(handle)))  # CLOSE
            writer.write_eof()
            close_status = None
            with contextlib.suppress(asyncio.IncompleteReadError):
                while True:
                    kind, body = await _sftp_reply(reader)
                    request, code = struct.unpack(">II", body[:8])
                    if request == 9:
                        close_status = code
        published = server.home(user) / name.lstrip("/")
        if close_status == 0:
            assert published.read_bytes() == chunk * count, "acknowledged, then lost"
        else:
            assert not published.exists()
