"""Helpers shared by the account filesystem tests, and the tests of path normalisation."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ferryd.auth.account import Account
from ferryd.config.models.access import VERBS, PathRule, Permissions, PermissionSet, VirtualFolder
from ferryd.fs.account_fs import AccountFS
from ferryd.fs.errors import FsError
from ferryd.fs.names import normalize, temp_name, temp_pattern


def permissions(
    allowed: Iterable[str] = VERBS,
    denied: Iterable[str] = (),
    rules: Iterable[tuple[str, Iterable[str], Iterable[str]]] = (),
) -> Permissions:
    """Global allowed/denied verbs, then ``(expression, allowed, denied)`` path rules."""
    return Permissions(
        PermissionSet(frozenset(allowed), frozenset(denied)),
        tuple(
            PathRule(expression, PermissionSet(frozenset(allow), frozenset(deny)))
            for expression, allow, deny in rules
        ),
    )


def make_account(
    home: Path,
    *,
    perms: Permissions | None = None,
    virtual_folders: Iterable[tuple[str, Path]] = (),
    create_home: bool = True,
    home_structure: Iterable[str] = (),
    upload_mode: str = "atomic",
    file_write_size: int = 0,
    umask: int = 0o022,
) -> Account:
    return Account(
        uuid="account-uuid",
        name="alice",
        groups=("DEFAULT_GROUP",),
        home=home,
        create_home=create_home,
        home_structure=tuple(home_structure),
        permissions=perms or permissions(),
        virtual_folders=tuple(VirtualFolder(v, str(r)) for v, r in virtual_folders),
        file_write_size=file_write_size,
        upload_mode=upload_mode,
        required_credentials="any",
        authorized_keys=(),
        authorized_keys_path=None,
        umask=umask,
    )


def snapshot(top: Path, skip: Iterable[Path] = ()) -> dict[str, tuple[object, ...]]:
    """Everything observable under ``top`` (links not followed), except the ``skip`` trees."""
    skipped = {str(path) for path in skip}
    state: dict[str, tuple[object, ...]] = {}
    for folder, dirs, files, _ in os.fwalk(top, follow_symlinks=False):
        dirs[:] = [d for d in dirs if os.path.join(folder, d) not in skipped]
        for name in [*dirs, *files]:
            path = os.path.join(folder, name)
            found = os.lstat(path)
            detail: object = None
            if stat.S_ISLNK(found.st_mode):
                detail = os.readlink(path)
            elif stat.S_ISREG(found.st_mode):
                detail = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            state[path] = (found.st_mode, found.st_size, found.st_mtime_ns, found.st_ino, detail)
    return state


@dataclass
class World:
    """A home, a virtual folder root and an ``outside`` sentinel folder, all in ``tmp_path``."""

    base: Path
    home: Path
    pub: Path
    outside: Path

    def fs(self, **options: Any) -> AccountFS:
        account = make_account(self.home, **options)
        fs = AccountFS(account, node_name="node1")
        fs.prepare()
        return fs

    def state(self) -> dict[str, tuple[object, ...]]:
        return snapshot(self.base, skip=(self.home, self.pub))


def make_world(tmp_path: Path) -> World:
    """The layout every filesystem test starts from (each test file wraps it in a fixture)."""
    home, pub, outside = tmp_path / "home", tmp_path / "pub", tmp_path / "outside"
    for folder in (home, pub, outside / "sub"):
        folder.mkdir(parents=True)
    (outside / "secret.txt").write_text("secret")
    (outside / "sub" / "inner.txt").write_text("inner")
    (home / "file.txt").write_text("hello")
    (home / "folder").mkdir()
    return World(tmp_path, home, pub, outside)


def refused(call: Callable[[], object], *codes: int) -> FsError:
    """Run ``call`` and return its ``FsError``, which must carry one of ``codes``."""
    with pytest.raises(FsError) as caught:
        call()
    assert caught.value.errno in codes, caught.value
    return caught.value


@pytest.mark.parametrize(
    ("path", "cwd", "expected"),
    [
        ("/", "/", "/"),
        ("", "/in", "/in"),
        (".", "/in", "/in"),
        ("a/b", "/in", "/in/a/b"),
        ("/a//b/./c/", "/", "/a/b/c"),
        ("/../../etc/passwd", "/", "/etc/passwd"),
        ("a/../../..", "/x", "/"),
        ("../../..", "/a/b", "/"),
        ("/a/b/../../../../c", "/", "/c"),
        (b"/caf\xc3\xa9", "/", "/café"),
        ("..\\..\\etc", "/", "/..\\..\\etc"),
    ],
)
def test_normalize_stays_under_root(path: str | bytes, cwd: str, expected: str) -> None:
    assert normalize(path, cwd) == expected


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/a\x00b", errno.EINVAL),
        (b"/a\x00", errno.EINVAL),
        (b"/\xff\xfe", errno.EILSEQ),
        ("/\udcff", errno.EILSEQ),
        ("/" + "a" * 256, errno.ENAMETOOLONG),
        ("/" + "é" * 128, errno.ENAMETOOLONG),
        ("/" + "/".join(["a" * 200] * 21), errno.ENAMETOOLONG),
        ("a" * 4097, errno.ENAMETOOLONG),
    ],
)
def test_normalize_refuses_bad_names(path: str | bytes, code: int) -> None:
    refused(lambda: normalize(path), code)


def test_normalize_accepts_limits() -> None:
    assert normalize("/" + "a" * 255) == "/" + "a" * 255
    assert normalize("é" * 127, "/") == "/" + "é" * 127


def test_long_relative_path_past_cwd_is_refused() -> None:
    cwd = "/" + "/".join(["a" * 200] * 19)
    refused(lambda: normalize("b" * 200 + "/" + "c" * 200, cwd), errno.ENAMETOOLONG)


def test_temp_names_fit_and_match_only_their_node() -> None:
    name = temp_name("node.1", "x" * 255)
    assert len(name.encode()) <= 255
    assert temp_pattern("node.1").match(name)
    assert not temp_pattern("node").match(name)
    assert not temp_pattern("node.1").match(temp_name("node", "file"))
    multibyte = temp_name("n", "é" * 127)
    assert len(multibyte.encode()) <= 255
    multibyte.encode().decode("utf-8")


def test_only_the_login_that_creates_a_home_reports_it(tmp_path: Path) -> None:
    """Two nodes logging the same new account in at once both find the home missing; only
    the one whose mkdir made it says so (event 20042 is logged once)."""
    home = tmp_path / "homes" / "new-account"
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def login() -> None:
        fs = AccountFS(make_account(home, create_home=True), node_name="node1")
        barrier.wait()
        results.append(fs.prepare())

    threads = [threading.Thread(target=login) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    assert home.is_dir()
    assert AccountFS(make_account(home, create_home=True), node_name="node1").prepare() is False
