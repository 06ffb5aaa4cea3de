"""Each operation needs exactly its verbs; path rules, regexes and deny-over-allow apply."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import pytest
from test_fs_support import World, make_world, permissions, refused

from ferryd.config.models.access import VERBS
from ferryd.fs.account_fs import AccountFS


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def _write(fs: AccountFS, path: str, *, read: bool = False) -> None:
    handle = fs.open_write(
        path, create=True, truncate=True, exclusive=False, append=False, read=read
    )
    handle.pwrite(0, b"data")
    handle.commit()


Operation = Callable[[AccountFS], object]
OPERATIONS: dict[str, tuple[frozenset[str], Operation]] = {
    "open_read": (frozenset({"read"}), lambda fs: fs.open_read("/file.txt").close()),
    "listdir": (frozenset({"list"}), lambda fs: fs.listdir("/")),
    "stat": (frozenset({"traverse"}), lambda fs: fs.stat("/file.txt")),
    "lstat": (frozenset({"traverse"}), lambda fs: fs.lstat("/link")),
    "realpath": (frozenset({"traverse"}), lambda fs: fs.realpath("/folder")),
    "readlink": (frozenset({"traverse"}), lambda fs: fs.readlink("/link")),
    "statvfs": (frozenset({"traverse"}), lambda fs: fs.statvfs("/")),
    "mkdir": (frozenset({"create-folder"}), lambda fs: fs.mkdir("/new")),
    "open_write": (frozenset({"write"}), lambda fs: _write(fs, "/new.txt")),
    "open_read_write": (
        frozenset({"write", "read"}),
        lambda fs: _write(fs, "/new.txt", read=True),
    ),
    "symlink": (frozenset({"write"}), lambda fs: fs.symlink("/file.txt", "/link2")),
    "hardlink": (frozenset({"read", "write"}), lambda fs: fs.link("/file.txt", "/hard")),
    "rename": (
        frozenset({"rename"}),
        lambda fs: fs.rename("/file.txt", "/moved.txt", overwrite=False),
    ),
    "remove": (frozenset({"delete-file"}), lambda fs: fs.remove("/file.txt")),
    "rmdir": (frozenset({"delete-folder"}), lambda fs: fs.rmdir("/folder")),
    "chmod": (frozenset({"set-attributes"}), lambda fs: fs.setstat("/file.txt", mode=0o600)),
    "touch": (frozenset({"set-attributes"}), lambda fs: fs.setstat("/folder", mtime=5.0)),
    "truncate": (
        frozenset({"set-attributes", "write"}),
        lambda fs: fs.setstat("/file.txt", size=1),
    ),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("verb", VERBS)
def test_permission_matrix(world: World, verb: str, operation: str) -> None:
    (world.home / "link").symlink_to("file.txt")
    fs = world.fs(perms=permissions(denied={verb}))
    needed, call = OPERATIONS[operation]
    if verb in needed:
        error = refused(lambda: call(fs), errno.EACCES)
        assert str(error).endswith(f"permission denied: {verb} {_path_of(error)}")
    else:
        call(fs)


def _path_of(error: OSError) -> str:
    return str(error).rsplit(" ", 1)[-1]


def test_every_verb_is_needed_by_some_operation() -> None:
    assert set().union(*(needed for needed, _ in OPERATIONS.values())) == set(VERBS)


def test_glob_rule_replaces_global_permissions(world: World) -> None:
    (world.home / "inbox").mkdir()
    fs = world.fs(perms=permissions(allowed={"list"}, rules=[("/inbox/*", VERBS, ())]))
    assert [name for name, _ in fs.listdir("/")] == ["file.txt", "folder", "inbox"]
    assert fs.listdir("/inbox") == []
    refused(lambda: _write(fs, "/outbox.txt"), errno.EACCES)
    refused(lambda: fs.open_read("/file.txt"), errno.EACCES)
    refused(lambda: fs.mkdir("/inbox2"), errno.EACCES)
    _write(fs, "/inbox/report.csv")
    fs.mkdir("/inbox/archive")
    fs.rename("/inbox/report.csv", "/inbox/archive/report.csv", overwrite=False)
    assert fs.open_read("/inbox/archive/report.csv").pread(0, 4) == b"data"
    error = refused(
        lambda: fs.rename("/inbox/archive/report.csv", "/report.csv", overwrite=False),
        errno.EACCES,
    )
    assert "permission denied: rename /report.csv" in str(error)
    fs.remove("/inbox/archive/report.csv")
    fs.rmdir("/inbox/archive")


def test_regex_rule(world: World) -> None:
    rules = [(r"m/\.txt$/", {"read", "list", "traverse"}, ())]
    fs = world.fs(perms=permissions(rules=rules))
    assert fs.open_read("/file.txt").pread(0, 5) == b"hello"
    refused(lambda: _write(fs, "/file.txt"), errno.EACCES)
    refused(lambda: fs.remove("/file.txt"), errno.EACCES)
    _write(fs, "/file.bin")
    fs.remove("/file.bin")


def test_negated_regex_rule(world: World) -> None:
    rules = [(r"e/^\/folder/", {"list"}, ())]
    fs = world.fs(perms=permissions(rules=rules))
    _write(fs, "/folder/ok.txt")
    refused(lambda: _write(fs, "/elsewhere.txt"), errno.EACCES)


def test_deny_beats_allow(world: World) -> None:
    fs = world.fs(perms=permissions(denied={"delete-file"}))
    refused(lambda: fs.remove("/file.txt"), errno.EACCES)
    fs.rename("/file.txt", "/kept.txt", overwrite=False)
    rules = [("/folder/*", VERBS, {"write"})]
    fs = world.fs(perms=permissions(rules=rules))
    refused(lambda: _write(fs, "/folder/x"), errno.EACCES)
    _write(fs, "/x")


def test_links_do_not_borrow_the_rights_of_their_location(world: World) -> None:
    """A link in an allowed place to a denied place is checked at its target too."""
    (world.home / "private").mkdir()
    (world.home / "private" / "secret.txt").write_text("secret")
    (world.home / "shortcut").symlink_to("private/secret.txt")
    (world.home / "door").symlink_to("private")
    rules = [("/private*", {"list"}, ())]
    fs = world.fs(perms=permissions(rules=rules))
    error = refused(lambda: fs.open_read("/shortcut"), errno.EACCES)
    assert "read /private/secret.txt" in str(error)
    refused(lambda: _write(fs, "/door/new.txt"), errno.EACCES)
    refused(lambda: fs.remove("/door/secret.txt"), errno.EACCES)
    assert not (world.home / "private" / "new.txt").exists()
    assert fs.lstat("/shortcut")


def test_a_hard_link_cannot_open_a_read_only_file_to_changes(world: World) -> None:
    """The new name shares the file: writes or chmod through it would change the original."""
    (world.home / "ro").mkdir()
    (world.home / "ro" / "data.csv").write_text("original")
    rules = [("/ro/*", {"read", "list", "traverse"}, ())]
    fs = world.fs(perms=permissions(rules=rules))
    error = refused(lambda: fs.link("/ro/data.csv", "/mine.csv"), errno.EACCES)
    assert "/ro/data.csv" in str(error)
    assert not (world.home / "mine.csv").exists()
    assert (world.home / "ro" / "data.csv").read_text() == "original"
    plain = world.fs(perms=permissions(allowed={"read", "write", "list", "traverse"}))
    plain.link("/ro/data.csv", "/copy.csv")  # the same rights at both names: allowed
    assert (world.home / "copy.csv").read_text() == "original"
