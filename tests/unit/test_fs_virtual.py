"""Virtual folders and the login-time preparation of the home."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest
from test_fs_support import World, make_account, make_world, refused

from ferryd.fs.account_fs import AccountFS
from ferryd.fs.errors import FsError


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def _write(fs: AccountFS, path: str, data: bytes = b"data") -> None:
    handle = fs.open_write(path, create=True, truncate=True, exclusive=False, append=False)
    handle.pwrite(0, data)
    handle.commit()


@pytest.fixture
def nested(world: World, tmp_path: Path) -> AccountFS:
    """``/pub`` plus ``/a/b/c``, whose parents do not exist in the home."""
    (world.pub / "shared.txt").write_text("shared")
    deep = tmp_path / "deep"
    deep.mkdir()
    return world.fs(virtual_folders=[("/pub", world.pub), ("/a/b/c", deep)])


def test_listing_shows_virtual_folders_and_synthetic_parents(
    world: World, nested: AccountFS
) -> None:
    root = dict(nested.listdir("/"))
    assert {"file.txt", "folder", "pub", "a"} <= set(root)
    assert stat.S_ISDIR(root["pub"].st_mode)
    assert root["pub"].st_ino == os.stat(world.pub).st_ino
    assert stat.S_ISDIR(root["a"].st_mode)
    assert [name for name, _ in nested.listdir("/a")] == ["b"]
    assert [name for name, _ in nested.listdir("/a/b")] == ["c"]
    assert nested.listdir("/a/b/c") == []
    assert stat.S_ISDIR(nested.stat("/a/b").st_mode)
    assert stat.S_ISDIR(nested.lstat("/a").st_mode)
    assert nested.realpath("/a/b/../b") == "/a/b"
    assert [name for name, _ in nested.listdir("/pub")] == ["shared.txt"]


def test_files_in_virtual_folders_map_to_their_real_folder(
    world: World, tmp_path: Path, nested: AccountFS
) -> None:
    assert nested.open_read("/pub/shared.txt").pread(0, 6) == b"shared"
    _write(nested, "/a/b/c/new.txt")
    assert (tmp_path / "deep" / "new.txt").read_bytes() == b"data"
    nested.mkdir("/pub/sub")
    assert (world.pub / "sub").is_dir()
    assert nested.real_path("/pub/sub") == str(world.pub / "sub")
    nested.rename("/pub/shared.txt", "/moved.txt", overwrite=False)
    assert (world.home / "moved.txt").read_text() == "shared"
    nested.symlink("/a/b/c/new.txt", "/pub/sub/link")
    assert nested.open_read("/pub/sub/link").pread(0, 4) == b"data"
    assert nested.readlink("/pub/sub/link") == "/a/b/c/new.txt"


@pytest.mark.parametrize("path", ["/", "/pub", "/a", "/a/b", "/a/b/c"])
def test_roots_and_their_parents_cannot_change(nested: AccountFS, path: str) -> None:
    refused(lambda: nested.rmdir(path), errno.EACCES)
    refused(lambda: nested.remove(path), errno.EACCES)
    refused(lambda: nested.rename(path, "/elsewhere", overwrite=True), errno.EACCES)
    refused(lambda: nested.rename("/folder", path, overwrite=True), errno.EACCES)
    refused(lambda: nested.setstat(path, mode=0o700), errno.EACCES)
    refused(lambda: nested.mkdir(path), errno.EEXIST)
    refused(lambda: nested.symlink("/file.txt", path), errno.EEXIST)
    refused(
        lambda: nested.open_write(path, create=True, truncate=True, exclusive=False, append=False),
        errno.EISDIR,
    )
    refused(lambda: nested.open_read(path), errno.EISDIR)


def test_roots_cannot_be_reached_through_a_link_to_change_them(
    world: World, nested: AccountFS
) -> None:
    (world.home / "up").symlink_to(".")
    refused(lambda: nested.rmdir("/up/pub"), errno.EACCES)
    refused(lambda: nested.rename("/up/pub", "/x", overwrite=True), errno.EACCES)
    assert world.pub.is_dir()


def test_home_times_can_change(world: World) -> None:
    fs = world.fs()
    fs.setstat("/", mtime=1_000_000.0, atime=1_000_000.0)
    assert os.stat(world.home).st_mtime == 1_000_000.0


def test_missing_virtual_target_without_create_home(world: World, tmp_path: Path) -> None:
    fs = AccountFS(
        make_account(world.home, create_home=False, virtual_folders=[("/gone", tmp_path / "gone")])
    )
    fs.prepare()
    assert "gone" not in dict(fs.listdir("/"))
    refused(lambda: fs.listdir("/gone"), errno.ENOENT)
    refused(lambda: _write(fs, "/gone/x"), errno.ENOENT)
    refused(lambda: fs.stat("/gone"), errno.ENOENT)
    assert not (tmp_path / "gone").exists()


def test_prepare_creates_home_targets_and_structure(tmp_path: Path) -> None:
    home = tmp_path / "homes" / "alice"
    target = tmp_path / "targets" / "pub"
    account = make_account(
        home,
        virtual_folders=[("/pub", target)],
        home_structure=["inbox", "outbox/archive", "/pub/drop"],
        umask=0o027,
    )
    AccountFS(account).prepare()
    for folder in (home, tmp_path / "homes", target, home / "inbox", home / "outbox" / "archive"):
        assert folder.is_dir()
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o750
    assert stat.S_IMODE(os.stat(home / "outbox" / "archive").st_mode) == 0o750
    assert (target / "drop").is_dir()
    AccountFS(account).prepare()


def test_prepare_refuses_missing_home(tmp_path: Path) -> None:
    fs = AccountFS(make_account(tmp_path / "nobody", create_home=False))
    error = refused(fs.prepare, errno.ENOENT)
    assert "home folder does not exist" in str(error)
    assert str(tmp_path) not in str(error)


def test_prepare_refuses_colliding_virtual_folder(world: World) -> None:
    (world.home / "pub").mkdir()
    error = refused(lambda: world.fs(virtual_folders=[("/pub", world.pub)]), errno.EEXIST)
    assert "/pub" in str(error) and str(world.base) not in str(error)


def test_prepare_refuses_file_where_a_virtual_parent_goes(world: World) -> None:
    refused(
        lambda: world.fs(virtual_folders=[("/file.txt/x", world.pub)]),
        errno.EEXIST,
    )


def test_real_parent_of_virtual_folder_merges(world: World) -> None:
    (world.home / "data").mkdir()
    (world.home / "data" / "local.txt").write_text("x")
    fs = world.fs(virtual_folders=[("/data/pub", world.pub)])
    assert [name for name, _ in fs.listdir("/data")] == ["local.txt", "pub"]
    refused(lambda: fs.rmdir("/data"), errno.EACCES)


def test_virtual_folder_targeting_the_same_home_entry_is_not_a_collision(world: World) -> None:
    (world.home / "folder").mkdir(exist_ok=True)
    fs = world.fs(virtual_folders=[("/folder", world.home / "folder")])
    assert [name for name, _ in fs.listdir("/")].count("folder") == 1
    handle = fs.open_write(
        "/folder/same.txt", create=True, truncate=True, exclusive=False, append=False
    )
    handle.pwrite(0, b"one place")
    handle.commit()
    assert (world.home / "folder" / "same.txt").read_bytes() == b"one place"


def test_structure_through_an_escaping_link_fails_login(world: World) -> None:
    (world.home / "inbox").symlink_to(world.outside)
    before = world.state()
    with pytest.raises(FsError) as caught:
        world.fs(home_structure=["inbox/archive"])
    assert caught.value.errno == errno.EACCES
    assert world.state() == before


def test_rename_across_devices_is_exdev(world: World) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(world.home).st_dev:
        pytest.skip("needs a second filesystem")
    target = shm / f"ferryd-test-{os.getpid()}-{world.base.name}"
    target.mkdir()
    try:
        fs = world.fs(virtual_folders=[("/mem", target)])
        refused(lambda: fs.rename("/file.txt", "/mem/file.txt", overwrite=True), errno.EXDEV)
        refused(lambda: fs.link("/file.txt", "/mem/file.txt"), errno.EXDEV)
    finally:
        for entry in target.iterdir():
            entry.unlink()
        target.rmdir()
