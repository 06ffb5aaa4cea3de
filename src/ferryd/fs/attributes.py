"""Changing size, mode and times of an entry already resolved inside the jail.

Changes go through a descriptor opened with ``O_NOFOLLOW`` on the entry, never through its
name, so an entry swapped for a link after the walk cannot redirect a chmod outside the jail.
"""

from __future__ import annotations

import errno
import os
import stat

from ferryd.fs.errors import fs_error, not_found, over_limit
from ferryd.fs.jail import Location

_OPEN_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def times_ns(
    found: os.stat_result, atime: float | None, mtime: float | None
) -> tuple[int, int] | None:
    """``os.utime`` nanoseconds; a time not given keeps its current value."""
    if atime is None and mtime is None:
        return None
    return (
        found.st_atime_ns if atime is None else int(atime * 1_000_000_000),
        found.st_mtime_ns if mtime is None else int(mtime * 1_000_000_000),
    )


def change_attributes(
    location: Location,
    virtual: str,
    *,
    size: int | None,
    mode: int | None,
    atime: float | None,
    mtime: float | None,
    limit: int,
) -> None:
    """chmod (permission bits only: no setuid/setgid), truncate, then set times (last, as
    truncating moves the modification time). Ownership is checked first: a refused chmod
    or utime must not come after the file was already truncated."""
    found = location.entry()
    if found is None:
        raise not_found(virtual)
    times = times_ns(found, atime, mtime)
    if location.name is None:
        if times is not None:
            os.utime(location.dir_fd, ns=times)
        return
    if not (stat.S_ISREG(found.st_mode) or stat.S_ISDIR(found.st_mode)):
        if size is not None or mode is not None:
            raise fs_error(errno.EOPNOTSUPP, virtual, "only times can change on this entry")
        if times is not None:
            os.utime(location.name, ns=times, dir_fd=location.dir_fd, follow_symlinks=False)
        return
    if size is not None:
        if stat.S_ISDIR(found.st_mode):
            raise fs_error(errno.EISDIR, virtual)
        if limit > 0 and size > limit:
            raise over_limit(limit, virtual)
    access = os.O_WRONLY if size is not None else os.O_RDONLY
    fd = os.open(location.name, access | _OPEN_FLAGS, dir_fd=location.dir_fd)
    try:
        current = os.fstat(fd)
        if not (stat.S_ISREG(current.st_mode) or stat.S_ISDIR(current.st_mode)):
            raise fs_error(errno.EOPNOTSUPP, virtual, "only times can change on this entry")
        apply_in_order(fd, virtual, current, size=size, mode=mode, times=times)
    finally:
        os.close(fd)


def apply_in_order(
    fd: int,
    virtual: str,
    current: os.stat_result,
    *,
    size: int | None,
    mode: int | None,
    times: tuple[int, int] | None,
) -> None:
    """Mode, size, times on an open descriptor, refusing up front what only the owner may
    do, so that a refusal changes nothing (a file shared by group stays whole)."""
    if (mode is not None or times is not None) and not _owns(current):
        raise fs_error(errno.EPERM, virtual, "only the file's owner may change its mode or times")
    if mode is not None:
        os.fchmod(fd, mode & 0o777)
    if size is not None:
        os.ftruncate(fd, size)
    if times is not None:
        os.utime(fd, ns=times)


def _owns(found: os.stat_result) -> bool:
    euid = os.geteuid()
    return euid == 0 or found.st_uid == euid
