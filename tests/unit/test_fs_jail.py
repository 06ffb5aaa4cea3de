"""Jail escapes: every attempt is refused and nothing beside the home changes."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from test_fs_support import World, make_world, refused

from ferryd.fs.account_fs import AccountFS
from ferryd.fs.errors import FsError


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


EACCES, ENOENT, ELOOP = errno.EACCES, errno.ENOENT, errno.ELOOP
Attempt = Callable[[AccountFS, World], object]


def _write(fs: AccountFS, path: str) -> None:
    handle = fs.open_write(path, create=True, truncate=True, exclusive=False, append=False)
    handle.pwrite(0, b"pwned")
    handle.commit()


def plant_links(world: World) -> None:
    """Links someone with shell access could have left in the home."""
    home, outside = world.home, world.outside
    (home / "out").symlink_to(outside)
    (home / "rel").symlink_to("../outside")
    (home / "out_file").symlink_to(outside / "secret.txt")
    (home / "chain1").symlink_to("chain2")
    (home / "chain2").symlink_to("folder/chain3")
    (home / "folder" / "chain3").symlink_to("../../outside")
    (home / "loop1").symlink_to("loop2")
    (home / "loop2").symlink_to("loop1")
    (home / "self").symlink_to("self")
    (home / "dots").symlink_to("../../../../../../../..")


def _escapes_through(link: str, last: str) -> list[tuple[str, Attempt, tuple[int, ...]]]:
    """Attempts through ``link``; ``last`` is the link of the chain that points outside."""
    return [
        (f"stat {link}", lambda fs, w: fs.stat(f"/{link}"), (EACCES,)),
        (f"listdir {link}", lambda fs, w: fs.listdir(f"/{link}"), (EACCES,)),
        (f"listdir {link}/sub", lambda fs, w: fs.listdir(f"/{link}/sub"), (EACCES,)),
        (f"realpath {link}", lambda fs, w: fs.realpath(f"/{link}/sub"), (EACCES,)),
        (f"readlink {link}", lambda fs, w: fs.readlink(f"/{last}"), (EACCES,)),
        (f"statvfs {link}", lambda fs, w: fs.statvfs(f"/{link}/sub"), (EACCES,)),
        (f"lstat {link}/x", lambda fs, w: fs.lstat(f"/{link}/secret.txt"), (EACCES,)),
        (f"read {link}", lambda fs, w: fs.open_read(f"/{link}/secret.txt"), (EACCES,)),
        (f"write {link}", lambda fs, w: _write(fs, f"/{link}/new.txt"), (EACCES,)),
        (f"overwrite {link}", lambda fs, w: _write(fs, f"/{link}/secret.txt"), (EACCES,)),
        (f"mkdir {link}", lambda fs, w: fs.mkdir(f"/{link}/newdir"), (EACCES,)),
        (f"remove {link}", lambda fs, w: fs.remove(f"/{link}/secret.txt"), (EACCES,)),
        (f"rmdir {link}", lambda fs, w: fs.rmdir(f"/{link}/sub"), (EACCES,)),
        (
            f"rename out of {link}",
            lambda fs, w: fs.rename(f"/{link}/secret.txt", "/stolen", overwrite=True),
            (EACCES,),
        ),
        (
            f"rename into {link}",
            lambda fs, w: fs.rename("/file.txt", f"/{link}/file.txt", overwrite=True),
            (EACCES,),
        ),
        (
            f"chmod via {link}",
            lambda fs, w: fs.setstat(f"/{link}/secret.txt", mode=0o777),
            (EACCES,),
        ),
        (f"touch {link}", lambda fs, w: fs.setstat(f"/{link}", mtime=0.0), (EACCES,)),
        (
            f"truncate via {link}",
            lambda fs, w: fs.setstat(f"/{link}/secret.txt", size=0),
            (EACCES,),
        ),
        (
            f"symlink to {link}",
            lambda fs, w: fs.symlink(f"/{link}/secret.txt", "/new_link"),
            (EACCES,),
        ),
        (
            f"symlink inside {link}",
            lambda fs, w: fs.symlink("/file.txt", f"/{link}/planted"),
            (EACCES,),
        ),
        (
            f"hardlink from {link}",
            lambda fs, w: fs.link(f"/{link}/secret.txt", "/hard"),
            (EACCES,),
        ),
        (
            f"hardlink into {link}",
            lambda fs, w: fs.link("/file.txt", f"/{link}/hard"),
            (EACCES,),
        ),
    ]


ATTEMPTS: list[tuple[str, Attempt, tuple[int, ...]]] = [
    *_escapes_through("out", "out"),
    *_escapes_through("rel", "rel"),
    *_escapes_through("chain1", "folder/chain3"),
    ("dotdot read", lambda fs, w: fs.open_read("/../../outside/secret.txt"), (ENOENT,)),
    ("dotdot relative stat", lambda fs, w: fs.stat("a/../../../outside"), (ENOENT,)),
    ("dotdot write", lambda fs, w: _write(fs, "/../outside/new.txt"), (ENOENT,)),
    ("dotdot mkdir", lambda fs, w: fs.mkdir("/../../outside/newdir"), (ENOENT,)),
    ("dotdot remove", lambda fs, w: fs.remove("../outside/secret.txt"), (ENOENT,)),
    ("dotdot list", lambda fs, w: fs.listdir("/folder/../../outside"), (ENOENT,)),
    ("real path read", lambda fs, w: fs.open_read(str(w.outside / "secret.txt")), (ENOENT,)),
    ("real path remove", lambda fs, w: fs.remove(str(w.outside / "secret.txt")), (ENOENT,)),
    (
        "real path rename",
        lambda fs, w: fs.rename("/file.txt", str(w.outside / "x"), overwrite=True),
        (ENOENT,),
    ),
    ("nul byte", lambda fs, w: fs.stat("/file.txt\x00/../../outside"), (errno.EINVAL,)),
    ("nul write", lambda fs, w: _write(fs, "/../outside/x\x00"), (errno.EINVAL,)),
    ("256-byte name", lambda fs, w: _write(fs, "/" + "a" * 256), (errno.ENAMETOOLONG,)),
    ("4 KiB path", lambda fs, w: fs.mkdir("/a" * 2100), (errno.ENAMETOOLONG,)),
    ("bad utf-8", lambda fs, w: fs.stat(b"/\xff/../../outside"), (errno.EILSEQ,)),  # type: ignore[arg-type]
    ("link to file outside", lambda fs, w: fs.open_read("/out_file"), (EACCES,)),
    ("write through file link", lambda fs, w: _write(fs, "/out_file"), (EACCES,)),
    ("truncate through link", lambda fs, w: fs.setstat("/out_file", size=0), (EACCES,)),
    ("chmod through link", lambda fs, w: fs.setstat("/out_file", mode=0o600), (EACCES,)),
    ("hardlink link to outside", lambda fs, w: fs.link("/out_file", "/hard"), (EACCES,)),
    ("hardlink dotdot", lambda fs, w: fs.link("/../../etc/passwd", "/x"), (ENOENT,)),
    ("hardlink real path", lambda fs, w: fs.link(str(w.outside / "secret.txt"), "/x"), (ENOENT,)),
    ("readlink file link", lambda fs, w: fs.readlink("/out_file"), (EACCES,)),
    ("dots link", lambda fs, w: fs.listdir("/dots"), (EACCES,)),
    ("loop stat", lambda fs, w: fs.stat("/loop1"), (ELOOP,)),
    ("loop list", lambda fs, w: fs.listdir("/loop1/x"), (ELOOP,)),
    ("loop write", lambda fs, w: _write(fs, "/loop1/new.txt"), (ELOOP,)),
    ("self loop", lambda fs, w: fs.open_read("/self"), (ELOOP,)),
]


@pytest.mark.parametrize(
    ("attempt", "codes"), [(a, c) for _, a, c in ATTEMPTS], ids=[n for n, _, _ in ATTEMPTS]
)
def test_escape_is_refused(world: World, attempt: Attempt, codes: tuple[int, ...]) -> None:
    plant_links(world)
    fs = world.fs()
    before = world.state()
    error = refused(lambda: attempt(fs, world), *codes)
    assert str(world.home) not in str(error)
    assert world.state() == before
    assert not list(world.home.glob(".ferryd-upload.*"))


def test_link_entries_themselves_can_be_handled(world: World) -> None:
    """Acting on the link (not through it) is fine and never touches its target."""
    plant_links(world)
    fs = world.fs()
    before = world.state()
    assert fs.lstat("/out").st_mode & 0o170000 == 0o120000
    names = dict(fs.listdir("/"))
    assert "out" in names and "rel" in names
    fs.setstat("/out", mtime=1000.0, follow=False)
    fs.rename("/out", "/renamed", overwrite=False)
    fs.remove("/renamed")
    fs.remove("/out_file")
    assert world.state() == before
    assert (world.outside / "secret.txt").read_text() == "secret"


def test_in_jail_links_are_followed(world: World) -> None:
    (world.home / "alias").symlink_to("folder")
    (world.home / "abs").symlink_to(world.home / "file.txt")
    (world.home / "folder" / "up").symlink_to("../file.txt")
    fs = world.fs()
    assert fs.realpath("/alias") == "/folder"
    assert fs.realpath("/abs") == "/file.txt"
    assert fs.readlink("/folder/up") == "/file.txt"
    assert fs.open_read("/folder/up").pread(0, 10) == b"hello"
    _write(fs, "/alias/new.txt")
    assert (world.home / "folder" / "new.txt").read_bytes() == b"pwned"


def test_dangling_in_jail_link_is_missing(world: World) -> None:
    (world.home / "dangling").symlink_to("nowhere")
    fs = world.fs()
    refused(lambda: fs.stat("/dangling"), ENOENT)
    refused(lambda: fs.open_read("/dangling"), ENOENT)


@pytest.mark.parametrize(
    "target", ["/../../outside/secret.txt", "../../../../outside", "/tmp/../../outside"]
)
def test_symlink_targets_are_virtual_and_stay_inside(world: World, target: str) -> None:
    fs = world.fs()
    fs.mkdir("/folder/deep")
    fs.symlink(target, "/folder/deep/link")
    stored = os.readlink(world.home / "folder" / "deep" / "link")
    assert not stored.startswith("/")
    resolved = Path(os.path.realpath(world.home / "folder" / "deep" / "link"))
    assert resolved.is_relative_to(world.home)


def test_symlink_with_real_absolute_target_stays_inside(world: World) -> None:
    before = world.state()
    fs = world.fs()
    fs.symlink(str(world.outside / "secret.txt"), "/l")
    resolved = Path(os.path.realpath(world.home / "l"))
    assert resolved.is_relative_to(world.home)
    refused(lambda: fs.open_read("/l"), ENOENT)
    assert world.state() == before


def test_folder_swapped_for_outside_link_between_calls(world: World) -> None:
    fs = world.fs()
    fs.mkdir("/d")
    _write(fs, "/d/f.txt")
    assert fs.stat("/d/f.txt").st_size == 5
    before = world.state()
    (world.home / "d").rename(world.home / "d.old")
    (world.home / "d").symlink_to(world.outside)
    refused(lambda: fs.stat("/d/secret.txt"), EACCES)
    refused(lambda: _write(fs, "/d/f.txt"), EACCES)
    refused(lambda: fs.remove("/d/secret.txt"), EACCES)
    assert world.state() == before


def test_handle_keeps_its_folder_when_swapped(world: World) -> None:
    """A publish uses the folder descriptor opened at open time, not the name."""
    fs = world.fs()
    fs.mkdir("/d")
    handle = fs.open_write("/d/new.txt", create=True, truncate=True, exclusive=False, append=False)
    handle.pwrite(0, b"data")
    before = world.state()
    (world.home / "d").rename(world.home / "d.old")
    (world.home / "d").symlink_to(world.outside)
    handle.commit()
    assert (world.home / "d.old" / "new.txt").read_bytes() == b"data"
    assert world.state() == before


def test_racing_swaps_never_reach_outside(world: World) -> None:
    """A thread flips a folder between a real folder and a link to outside during operations."""
    fs = world.fs()
    fs.mkdir("/race")
    home = world.home
    stop = threading.Event()

    def flipper() -> None:
        steps: list[Callable[[], object]] = [
            lambda: (home / "race").rename(home / "race.real"),
            lambda: (home / "race").symlink_to(world.outside),
            lambda: (home / "race").unlink(),
            lambda: (home / "race.real").rename(home / "race"),
        ]
        while not stop.is_set():
            for step in steps:
                with contextlib.suppress(OSError):
                    step()

    def actions(index: int) -> list[Callable[[], object]]:
        return [
            lambda: _write(fs, f"/race/f{index}.txt"),
            lambda: fs.mkdir(f"/race/d{index}"),
            lambda: fs.setstat("/race/secret.txt", mode=0o777, size=0),
            lambda: fs.remove("/race/secret.txt"),
            lambda: fs.rmdir("/race/sub"),
            lambda: fs.symlink("/file.txt", "/race/planted"),
            lambda: fs.rename("/race/secret.txt", "/got.txt", overwrite=True),
            lambda: fs.open_read("/race/secret.txt").close(),
        ]

    before = world.state()
    thread = threading.Thread(target=flipper)
    thread.start()
    try:
        for index in range(300):
            for action in actions(index):
                with contextlib.suppress(FsError):
                    action()
    finally:
        stop.set()
        thread.join()
    assert world.state() == before
    assert not (world.home / "got.txt").exists()


@pytest.fixture
def jailed_pub(world: World) -> AccountFS:
    (world.pub / "esc").symlink_to("../outside")
    (world.pub / "esc_abs").symlink_to(world.outside / "secret.txt")
    (world.pub / "to_home").symlink_to("../home/file.txt")
    return world.fs(virtual_folders=[("/pub", world.pub)])


@pytest.mark.parametrize(
    "attempt",
    [
        lambda fs: fs.stat("/pub/esc"),
        lambda fs: fs.listdir("/pub/esc"),
        lambda fs: fs.open_read("/pub/esc_abs"),
        lambda fs: fs.open_read("/pub/esc/secret.txt"),
        lambda fs: _write(fs, "/pub/esc/new.txt"),
        lambda fs: fs.readlink("/pub/esc"),
        lambda fs: fs.rename("/pub/esc/secret.txt", "/pub/x", overwrite=True),
        lambda fs: fs.mkdir("/pub/../pub/esc/x"),
    ],
)
def test_virtual_folder_link_cannot_escape(
    world: World, jailed_pub: AccountFS, attempt: Callable[[AccountFS], object]
) -> None:
    before = world.state()
    refused(lambda: attempt(jailed_pub), EACCES)
    assert world.state() == before


def test_virtual_folder_link_into_home_is_allowed(world: World, jailed_pub: AccountFS) -> None:
    assert jailed_pub.realpath("/pub/to_home") == "/file.txt"
    assert jailed_pub.open_read("/pub/to_home").pread(0, 5) == b"hello"
    (world.home / "to_pub").symlink_to(world.pub)
    assert jailed_pub.realpath("/to_pub/to_home") == "/file.txt"
    assert jailed_pub.realpath("/to_pub") == "/pub"


def test_errors_never_name_real_paths(world: World) -> None:
    plant_links(world)
    fs = world.fs()
    for call in (
        lambda: fs.stat("/missing/x"),
        lambda: fs.open_read("/folder"),
        lambda: fs.rmdir("/folder/nothing"),
        lambda: fs.mkdir("/folder"),
        lambda: fs.remove("/folder"),
        lambda: fs.rename("/nothing", "/x", overwrite=True),
        lambda: fs.rename("/file.txt", "/folder", overwrite=False),
        lambda: fs.listdir("/file.txt"),
        lambda: fs.readlink("/file.txt"),
        lambda: fs.stat("/out"),
    ):
        with pytest.raises(FsError) as caught:
            call()
        assert str(world.base) not in str(caught.value)
        assert caught.value.filename is None
