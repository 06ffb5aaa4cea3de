"""Upload modes, write limits, hidden temporaries and the start-up sweep."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest
from test_fs_support import World, make_world, permissions, refused

from ferryd.fs.account_fs import AccountFS
from ferryd.fs.names import INSTANCE, temp_name
from ferryd.fs.sweep import sweep_stale_uploads
from ferryd.fs.uploads import WriteHandle


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def _open(
    fs: AccountFS,
    path: str,
    *,
    create: bool = True,
    truncate: bool = True,
    exclusive: bool = False,
    append: bool = False,
    read: bool = False,
    mode: int | None = None,
) -> WriteHandle:
    return fs.open_write(
        path,
        create=create,
        truncate=truncate,
        exclusive=exclusive,
        append=append,
        read=read,
        mode=mode,
    )


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(".ferryd-upload.*"))


def test_atomic_commit_publishes_only_at_the_end(world: World) -> None:
    fs = world.fs()
    handle = _open(fs, "/file.txt")
    assert handle.pwrite(0, b"new content") == 11
    assert (world.home / "file.txt").read_text() == "hello"
    [temp] = _temps(world.home)
    assert temp.name.startswith(f".ferryd-upload.node1.{os.getpid()}-")
    assert temp.name.startswith(f".ferryd-upload.node1.{INSTANCE}.")
    assert temp.name.endswith(".file.txt")
    assert "file.txt" in dict(fs.listdir("/"))
    assert not any(name.startswith(".ferryd") for name, _ in fs.listdir("/"))
    refused(lambda: fs.stat("/" + temp.name), errno.ENOENT)
    refused(lambda: fs.open_read("/" + temp.name), errno.ENOENT)
    refused(lambda: fs.remove("/" + temp.name), errno.ENOENT)
    refused(lambda: _open(fs, "/" + temp.name), errno.ENOENT)
    refused(lambda: fs.rename("/file.txt", "/" + temp.name, overwrite=True), errno.ENOENT)
    handle.commit()
    assert (world.home / "file.txt").read_text() == "new content"
    assert _temps(world.home) == []
    assert handle.bytes_written == 11
    assert handle.real == str(world.home / "file.txt")
    handle.commit()  # a second close, or an abort after publishing, changes nothing
    handle.abort()
    assert (world.home / "file.txt").read_text() == "new content"
    assert _temps(world.home) == []


def test_atomic_abort_leaves_nothing(world: World) -> None:
    fs = world.fs()
    handle = _open(fs, "/new.txt")
    handle.pwrite(0, b"partial")
    handle.abort()
    assert not (world.home / "new.txt").exists()
    assert _temps(world.home) == []
    handle = _open(fs, "/file.txt")
    handle.pwrite(0, b"partial")
    handle.abort()
    assert (world.home / "file.txt").read_text() == "hello"


def test_atomic_resumable_abort_publishes_the_partial(world: World) -> None:
    fs = world.fs(upload_mode="atomic-resumable")
    handle = _open(fs, "/big.bin")
    handle.pwrite(0, b"first half")
    assert not (world.home / "big.bin").exists()
    handle.abort()
    assert (world.home / "big.bin").read_bytes() == b"first half"
    assert _temps(world.home) == []
    resumed = _open(fs, "/big.bin", truncate=False)
    assert resumed.temporary_name is None
    resumed.pwrite(10, b" and second")
    resumed.commit()
    assert (world.home / "big.bin").read_bytes() == b"first half and second"


@pytest.mark.parametrize("mode", ["atomic", "atomic-resumable", "direct"])
def test_resume_keeps_the_existing_prefix(world: World, mode: str) -> None:
    fs = world.fs(upload_mode=mode)
    handle = _open(fs, "/file.txt", truncate=False)
    handle.pwrite(5, b" world")
    handle.commit()
    assert (world.home / "file.txt").read_text() == "hello world"
    assert _temps(world.home) == []


@pytest.mark.parametrize("mode", ["atomic", "atomic-resumable", "direct"])
def test_append_writes_at_the_end(world: World, mode: str) -> None:
    fs = world.fs(upload_mode=mode)
    handle = _open(fs, "/file.txt", truncate=False, append=True)
    handle.pwrite(0, b", ")
    handle.pwrite(0, b"there")
    handle.commit()
    assert (world.home / "file.txt").read_text() == "hello, there"


def test_direct_writes_in_place(world: World) -> None:
    fs = world.fs(upload_mode="direct")
    handle = _open(fs, "/file.txt")
    assert (world.home / "file.txt").read_bytes() == b""
    handle.pwrite(0, b"abc")
    assert (world.home / "file.txt").read_bytes() == b"abc"
    assert _temps(world.home) == []
    handle.abort()
    assert (world.home / "file.txt").read_bytes() == b"abc"


@pytest.mark.parametrize("mode", ["atomic", "atomic-resumable", "direct"])
def test_exclusive_and_missing(world: World, mode: str) -> None:
    fs = world.fs(upload_mode=mode)
    refused(lambda: _open(fs, "/file.txt", exclusive=True), errno.EEXIST)
    refused(lambda: _open(fs, "/absent.txt", create=False), errno.ENOENT)
    refused(lambda: _open(fs, "/folder"), errno.EISDIR)
    refused(lambda: _open(fs, "/nowhere/x.txt"), errno.ENOENT)
    refused(lambda: _open(fs, "/file.txt/x"), errno.ENOTDIR)
    handle = _open(fs, "/fresh.txt", exclusive=True)
    handle.commit()
    assert (world.home / "fresh.txt").exists()
    assert _temps(world.home) == []


def test_exclusive_publish_does_not_replace_a_file_created_meanwhile(world: World) -> None:
    fs = world.fs()
    handle = _open(fs, "/race.txt", exclusive=True)
    handle.pwrite(0, b"mine")
    (world.home / "race.txt").write_text("theirs")
    refused(handle.commit, errno.EEXIST)
    assert (world.home / "race.txt").read_text() == "theirs"
    assert _temps(world.home) == []


@pytest.mark.parametrize("mode", ["atomic", "atomic-resumable", "direct"])
def test_file_write_size_limit(world: World, mode: str) -> None:
    fs = world.fs(upload_mode=mode, file_write_size=10)
    handle = _open(fs, "/limited.bin")
    handle.pwrite(0, b"12345678")
    error = refused(lambda: handle.pwrite(8, b"abc"), errno.EDQUOT)
    assert str(error).endswith("file_write_size limit of 10 bytes reached: /limited.bin")
    assert handle.failed
    refused(lambda: handle.pwrite(0, b"x"), errno.EDQUOT)
    refused(handle.commit, errno.EDQUOT)
    if mode == "direct":
        assert (world.home / "limited.bin").read_bytes() == b"12345678"
    else:
        assert not (world.home / "limited.bin").exists()
    assert _temps(world.home) == []
    refused(lambda: fs.setstat("/file.txt", size=11), errno.EDQUOT)
    # A refused size change writes nothing: the upload carries on and publishes.
    truncating = _open(fs, "/other.bin")
    truncating.pwrite(0, b"kept")
    refused(lambda: truncating.set_attributes(size=11), errno.EDQUOT)
    assert not truncating.failed
    truncating.pwrite(4, b"!")
    truncating.commit()
    assert (world.home / "other.bin").read_bytes() == b"kept!"


@pytest.mark.parametrize("mode", ["atomic", "atomic-resumable"])
@pytest.mark.parametrize("ending", ["commit", "abort"])
def test_an_fsync_failing_at_the_end_removes_the_hidden_file(
    world: World, mode: str, ending: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk cannot be made to fail on demand here; os.fsync raising EIO stands in for it
    (or for ENOSPC/EDQUOT that NFS and quotas report only at fsync)."""
    fs = world.fs(upload_mode=mode)
    handle = _open(fs, "/late.bin")
    handle.pwrite(0, b"data")

    def failing(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing)
    if ending == "commit" or mode == "atomic-resumable":
        refused(getattr(handle, ending), errno.EIO)
    else:
        handle.abort()  # plain atomic drops the upload without syncing it
    assert _temps(world.home) == []
    assert not (world.home / "late.bin").exists()


def test_read_write_handle_and_modes(world: World) -> None:
    fs = world.fs(umask=0o002)
    handle = _open(fs, "/rw.txt", read=True)
    handle.pwrite(0, b"abcdef")
    assert handle.pread(2, 3) == b"cde"
    assert handle.fstat().st_size == 6
    handle.set_attributes(size=4)
    handle.fsync()
    handle.commit()
    assert (world.home / "rw.txt").read_bytes() == b"abcd"
    assert stat.S_IMODE(os.stat(world.home / "rw.txt").st_mode) == 0o664
    write_only = _open(fs, "/wo.txt", mode=0o640)
    refused(lambda: write_only.pread(0, 1), errno.EBADF)
    write_only.commit()
    assert stat.S_IMODE(os.stat(world.home / "wo.txt").st_mode) == 0o640
    os.chmod(world.home / "file.txt", 0o600)
    replaced = _open(fs, "/file.txt")
    replaced.commit()
    assert stat.S_IMODE(os.stat(world.home / "file.txt").st_mode) == 0o600
    refused(lambda: replaced.pwrite(0, b"late"), errno.EBADF)


def test_direct_new_file_mode(world: World) -> None:
    fs = world.fs(upload_mode="direct", umask=0o077)
    _open(fs, "/private.txt").commit()
    assert stat.S_IMODE(os.stat(world.home / "private.txt").st_mode) == 0o600


def test_write_through_in_jail_link_replaces_the_target(world: World) -> None:
    (world.home / "alias.txt").symlink_to("folder/target.txt")
    fs = world.fs()
    handle = _open(fs, "/alias.txt")
    handle.pwrite(0, b"via link")
    handle.commit()
    assert (world.home / "folder" / "target.txt").read_bytes() == b"via link"
    assert (world.home / "alias.txt").is_symlink()


def test_long_final_name_gets_a_short_enough_temporary(world: World) -> None:
    fs = world.fs()
    name = "é" * 127
    handle = _open(fs, f"/{name}")
    [temp] = _temps(world.home)
    assert len(temp.name.encode()) <= 255
    handle.commit()
    assert (world.home / name).exists()


def test_read_handle(world: World) -> None:
    fs = world.fs()
    handle = fs.open_read("/file.txt")
    assert handle.pread(1, 3) == b"ell"
    assert handle.pread(4, 100) == b"o"
    assert handle.pread(10, 5) == b""
    assert handle.bytes_read == 4
    assert handle.fstat().st_size == 5
    assert handle.real == str(world.home / "file.txt")
    handle.close()
    handle.close()
    refused(lambda: handle.pread(0, 1), errno.EBADF)


def earlier_run(node: str, final: str) -> str:
    """A temporary name as an earlier run of ``node`` (another pid and run mark) made it."""
    return temp_name(node, final).replace(INSTANCE, "4242-0badcafe")


def test_sweep_removes_only_this_nodes_temporaries_of_earlier_runs(world: World) -> None:
    (world.home / "folder" / "deep").mkdir()
    mine = [
        world.home / earlier_run("node1", "a.txt"),
        world.home / "folder" / "deep" / earlier_run("node1", "b.txt"),
        world.pub / earlier_run("node1", "c.txt"),
    ]
    others = [
        world.home / earlier_run("node2", "a.txt"),
        world.home / earlier_run("node1.x", "a.txt"),
        world.home / earlier_run("node10", "a.txt"),
        world.home / temp_name("node1", "live.txt"),  # this run's: an upload in flight
        world.home / ".ferryd-upload.node1.notapid.file",
        world.home / "folder" / "regular.txt",
        world.outside / earlier_run("node1", "outside.txt"),
    ]
    for path in [*mine, *others]:
        path.write_text("x")
    (world.home / "escape").symlink_to(world.outside)
    link = world.home / earlier_run("node1", "link")
    link.symlink_to(world.home / "file.txt")
    removed = sweep_stale_uploads([world.home, world.pub, world.home / "folder"], "node1")
    assert sorted(removed) == sorted(mine)
    assert all(not path.exists() for path in mine)
    assert all(path.exists() for path in others)
    assert link.is_symlink()


def test_sweep_ignores_missing_roots(tmp_path: Path) -> None:
    assert sweep_stale_uploads([tmp_path / "missing"], "node1") == []


def test_set_attributes_on_the_handle_survive_publication(world: World) -> None:
    fs = world.fs()
    handle = _open(fs, "/stamped.txt")
    handle.pwrite(0, b"data")
    handle.set_attributes(mode=0o4640, mtime=1_000.0)
    handle.commit()
    found = os.stat(world.home / "stamped.txt")
    assert (stat.S_IMODE(found.st_mode), found.st_mtime) == (0o640, 1_000.0)


def test_set_attributes_on_the_handle_needs_the_permission(world: World) -> None:
    fs = world.fs(perms=permissions(denied={"set-attributes"}))
    handle = _open(fs, "/plain.txt")
    error = refused(lambda: handle.set_attributes(mtime=1.0), errno.EACCES)
    assert "permission denied: set-attributes /plain.txt" in str(error)
    handle.abort()
