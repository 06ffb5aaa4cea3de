"""Everyday semantics of the account filesystem operations and their errno values."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

import pytest
from test_fs_support import World, make_world, refused


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def test_stat_lstat_and_listing(world: World) -> None:
    (world.home / "link").symlink_to("file.txt")
    fs = world.fs()
    assert stat.S_ISREG(fs.stat("/link").st_mode)
    assert stat.S_ISLNK(fs.lstat("/link").st_mode)
    assert fs.stat("/").st_ino == os.stat(world.home).st_ino
    listing = fs.listdir("/")
    assert [name for name, _ in listing] == ["file.txt", "folder", "link"]
    assert stat.S_ISLNK(dict(listing)["link"].st_mode)
    assert fs.listdir("/folder") == []
    refused(lambda: fs.listdir("/file.txt"), errno.ENOTDIR)
    refused(lambda: fs.listdir("/missing"), errno.ENOENT)
    refused(lambda: fs.stat("/file.txt/below"), errno.ENOTDIR)
    assert fs.statvfs("/folder").f_bsize > 0


def test_normalize_and_realpath(world: World) -> None:
    (world.home / "folder" / "back").symlink_to("..")
    fs = world.fs()
    assert fs.normalize("x/../y", "/folder") == "/folder/y"
    assert fs.realpath("/folder/back/folder") == "/folder"
    assert fs.realpath("/folder/not-yet") == "/folder/not-yet"
    assert fs.real_path("/folder/back/file.txt") == str(world.home / "file.txt")
    refused(lambda: fs.realpath("/missing/deeper"), errno.ENOENT)


def test_mkdir_and_rmdir(world: World) -> None:
    fs = world.fs(umask=0o027)
    fs.mkdir("/made")
    assert stat.S_IMODE(os.stat(world.home / "made").st_mode) == 0o750
    fs.mkdir("/made/private", 0o700)
    assert stat.S_IMODE(os.stat(world.home / "made" / "private").st_mode) == 0o700
    refused(lambda: fs.mkdir("/made"), errno.EEXIST)
    refused(lambda: fs.mkdir("/file.txt"), errno.EEXIST)
    refused(lambda: fs.mkdir("/absent/child"), errno.ENOENT)
    refused(lambda: fs.rmdir("/made"), errno.ENOTEMPTY)
    refused(lambda: fs.rmdir("/file.txt"), errno.ENOTDIR)
    refused(lambda: fs.rmdir("/absent"), errno.ENOENT)
    fs.rmdir("/made/private")
    fs.rmdir("/made")
    assert not (world.home / "made").exists()


def test_remove(world: World) -> None:
    (world.home / "link").symlink_to("folder")
    fs = world.fs()
    refused(lambda: fs.remove("/folder"), errno.EISDIR)
    refused(lambda: fs.remove("/absent"), errno.ENOENT)
    fs.remove("/link")
    assert (world.home / "folder").is_dir()
    fs.remove("/file.txt")
    assert not (world.home / "file.txt").exists()


def test_rename(world: World) -> None:
    (world.home / "other.txt").write_text("other")
    fs = world.fs()
    refused(lambda: fs.rename("/file.txt", "/other.txt", overwrite=False), errno.EEXIST)
    assert (world.home / "other.txt").read_text() == "other"
    fs.rename("/file.txt", "/other.txt", overwrite=True)
    assert (world.home / "other.txt").read_text() == "hello"
    assert not (world.home / "file.txt").exists()
    refused(lambda: fs.rename("/absent", "/x", overwrite=False), errno.ENOENT)
    refused(lambda: fs.rename("/folder", "/folder/inside", overwrite=False), errno.EINVAL)
    refused(lambda: fs.rename("/other.txt", "/nowhere/x", overwrite=False), errno.ENOENT)
    fs.rename("/folder", "/renamed", overwrite=False)
    assert (world.home / "renamed").is_dir()


def test_symlink_is_stored_relative(world: World) -> None:
    fs = world.fs(virtual_folders=[("/pub", world.pub)])
    fs.symlink("/folder/x", "/abs")
    assert os.readlink(world.home / "abs") == "folder/x"
    fs.symlink("sibling", "/folder/rel")
    assert os.readlink(world.home / "folder" / "rel") == "sibling"
    assert fs.readlink("/folder/rel") == "/folder/sibling"
    fs.symlink("/file.txt", "/pub/home-file")
    stored = os.readlink(world.pub / "home-file")
    assert stored == os.path.relpath(world.home / "file.txt", world.pub)
    assert fs.open_read("/pub/home-file").pread(0, 5) == b"hello"
    refused(lambda: fs.symlink("/x", "/file.txt"), errno.EEXIST)
    refused(lambda: fs.readlink("/file.txt"), errno.EINVAL)
    refused(lambda: fs.readlink("/absent"), errno.ENOENT)


def test_hard_link(world: World) -> None:
    (world.home / "link").symlink_to("file.txt")
    fs = world.fs()
    fs.link("/file.txt", "/hard.txt")
    assert os.stat(world.home / "hard.txt").st_ino == os.stat(world.home / "file.txt").st_ino
    fs.link("/link", "/via-link.txt")
    assert not (world.home / "via-link.txt").is_symlink()
    refused(lambda: fs.link("/folder", "/hard-folder"), errno.EPERM)
    refused(lambda: fs.link("/file.txt", "/hard.txt"), errno.EEXIST)
    refused(lambda: fs.link("/absent", "/x"), errno.ENOENT)


def test_setstat(world: World) -> None:
    (world.home / "link").symlink_to("file.txt")
    os.mkfifo(world.home / "pipe")
    fs = world.fs()
    fs.setstat("/file.txt", mode=0o4755, atime=100.0, mtime=200.0)
    found = os.stat(world.home / "file.txt")
    assert stat.S_IMODE(found.st_mode) == 0o755
    assert (found.st_atime, found.st_mtime) == (100.0, 200.0)
    fs.setstat("/link", mtime=300.0)
    assert os.stat(world.home / "file.txt").st_atime == 100.0
    assert os.stat(world.home / "file.txt").st_mtime == 300.0
    fs.setstat("/file.txt", size=2)
    assert (world.home / "file.txt").read_bytes() == b"he"
    fs.setstat("/link", mtime=50.0, follow=False)
    assert os.lstat(world.home / "link").st_mtime == 50.0
    assert os.stat(world.home / "file.txt").st_mtime != 50.0
    refused(lambda: fs.setstat("/link", mode=0o600, follow=False), errno.EOPNOTSUPP)
    refused(lambda: fs.setstat("/folder", size=0), errno.EISDIR)
    refused(lambda: fs.setstat("/pipe", mode=0o600), errno.EOPNOTSUPP)
    refused(lambda: fs.setstat("/absent", mode=0o600), errno.ENOENT)
    fs.setstat("/pipe", mtime=10.0)
    fs.setstat("/folder", mode=0o700)
    assert stat.S_IMODE(os.stat(world.home / "folder").st_mode) == 0o700


def test_open_read_refuses_non_files(world: World) -> None:
    os.mkfifo(world.home / "pipe")
    fs = world.fs()
    refused(lambda: fs.open_read("/folder"), errno.EISDIR)
    refused(lambda: fs.open_read("/"), errno.EISDIR)
    refused(lambda: fs.open_read("/pipe"), errno.EACCES)
    refused(lambda: fs.open_read("/absent"), errno.ENOENT)
    refused(
        lambda: fs.open_write("/pipe", create=True, truncate=True, exclusive=False, append=False),
        errno.EACCES,
    )


def test_descriptors_are_not_leaked(world: World) -> None:
    (world.home / "out").symlink_to(world.outside)
    fs = world.fs()
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        fs.listdir("/")
        fs.stat("/folder")
        for call in (
            lambda: fs.stat("/out/x"),
            lambda: fs.open_read("/absent"),
            lambda: fs.mkdir("/folder"),
            lambda: fs.rename("/absent", "/x", overwrite=False),
        ):
            with contextlib.suppress(OSError):
                call()
        fs.open_read("/file.txt").close()
        fs.open_write("/tmp.txt", create=True, truncate=True, exclusive=False, append=False).abort()
    assert len(os.listdir("/proc/self/fd")) == before


def test_deleting_reports_the_real_path_deleted_a_links_own_for_a_link(world: World) -> None:
    (world.home / "alias.txt").symlink_to("folder")
    (world.home / "empty").mkdir()
    fs = world.fs()
    assert fs.remove("/alias.txt") == str(world.home / "alias.txt")
    assert (world.home / "folder").is_dir(), "the link's target is untouched"
    assert fs.rmdir("/empty") == str(world.home / "empty")
