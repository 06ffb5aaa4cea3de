"""Login-time preparation of an account's folders: home, virtual folder roots, structure.

Runs before the session may touch anything, so a home that is missing, or a virtual folder
hiding a real entry of the home, fails the login with a clear reason instead of showing the
client a half-working jail.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ferryd.auth.account import Account
from ferryd.fs.errors import FsError, fs_error, mapped
from ferryd.fs.jail import DIR_FLAGS, Jail, Root
from ferryd.fs.names import normalize, split
from ferryd.fs.oscalls import fix_folder_mode


def prepare_account(jail: Jail, account: Account) -> bool:
    """Create what the account needs; raise ``FsError`` when the login must fail.

    True when this call created the home (two nodes logging the account in at once both
    find it missing, only one creates it)."""
    mode = 0o777 & ~account.umask
    created = _ensure_folder(account.home, mode, account.create_home, "home folder")
    if account.create_home:
        for folder in account.virtual_folders:
            _ensure_folder(Path(folder.real), mode, True, f"virtual folder {folder.virtual}")
    jail.refresh()
    for root in jail.folders:
        _refuse_collision(jail, root)
    for entry in account.home_structure:
        make_folders(jail, normalize(entry), mode)
    return created


def _ensure_folder(path: Path, mode: int, create: bool, what: str) -> bool:
    """Create ``path`` and its missing parents with ``mode`` (trusted, configured paths);
    True when ``path`` itself was created here."""
    if path.is_dir():
        return False
    if path.exists() or path.is_symlink():
        if path.is_dir():  # another login (or node) made it a moment ago
            return False
        raise FsError(errno.ENOTDIR, f"{what} is not a folder")
    if not create:
        raise FsError(errno.ENOENT, f"{what} does not exist")
    missing = []
    current = path
    while not (current.exists() or current.is_symlink()):
        missing.append(current)
        current = current.parent
    created = False
    try:
        for folder in reversed(missing):
            try:
                os.mkdir(folder, mode)
            except FileExistsError:
                continue
            os.chmod(folder, mode)
            created = folder == path
    except OSError as error:
        code = error.errno or errno.EIO
        raise FsError(code, f"cannot create {what}: {os.strerror(code)}") from None
    if not path.is_dir():  # what appeared there meanwhile is not a folder
        raise FsError(errno.ENOTDIR, f"{what} is not a folder")
    return created


def _refuse_collision(jail: Jail, root: Root) -> None:
    """A virtual folder must not hide an entry of its parent's folder (or a non-folder parent)."""
    parent, name = split(root.virtual)
    owner, names = jail.mount(parent)
    names = [*names, name]
    try:
        target = os.stat(root.real)
    except OSError:
        target = None
    with mapped(root.virtual):
        try:
            fd = owner.open()
        except FileNotFoundError:
            return
        try:
            for index, part in enumerate(names):
                try:
                    found = os.stat(part, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    return
                if index == len(names) - 1:
                    if target and (found.st_dev, found.st_ino) == (target.st_dev, target.st_ino):
                        return
                    break
                if not stat.S_ISDIR(found.st_mode):
                    break
                fd, previous = os.open(part, DIR_FLAGS, dir_fd=fd), fd
                os.close(previous)
        finally:
            os.close(fd)
    raise FsError(
        errno.EEXIST, f"virtual folder {root.virtual} collides with an entry of the home folder"
    )


def make_folders(jail: Jail, virtual: str, mode: int) -> None:
    """``mkdir -p`` through the jail, so links planted in the home cannot redirect it."""
    parts = [part for part in virtual.split("/") if part]
    for index in range(1, len(parts) + 1):
        path = "/" + "/".join(parts[:index])
        if jail.is_protected(path):
            continue
        with jail.at(path, follow_last=False) as location, mapped(path):
            if location.name is None:
                continue
            try:
                os.mkdir(location.name, mode, dir_fd=location.dir_fd)
            except FileExistsError:
                pass
            else:
                fix_folder_mode(location.dir_fd, location.name, mode)
                continue
        with jail.at(path, follow_last=True) as existing:
            found = existing.entry()
            if found is None or not stat.S_ISDIR(found.st_mode):
                raise fs_error(errno.ENOTDIR, path)
