"""System calls the standard library lacks or spells differently per platform.

Kept apart so the jail and the upload code read as plain ``*at`` calls on folder descriptors.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable

_RENAME_NOREPLACE = 1
_COPY_CHUNK = 1 << 20
_COPY_FALLBACK = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF}

Renameat2 = Callable[[int, bytes, int, bytes, int], int]


def _load_renameat2() -> Renameat2 | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    found: Renameat2 = function
    return found


_renameat2 = _load_renameat2()


def rename_noreplace(src_dir_fd: int, src: str, dst_dir_fd: int, dst: str) -> None:
    """Rename, failing with EEXIST when ``dst`` exists (race-free where renameat2 exists)."""
    if _renameat2 is not None:
        result = _renameat2(src_dir_fd, os.fsencode(src), dst_dir_fd, os.fsencode(dst), 1)
        if result == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, os.strerror(code))
    try:
        os.stat(dst, dir_fd=dst_dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        os.rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
        return
    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST))


def copy_fd(src: int, dst: int) -> int:
    """Copy all of ``src`` to the start of ``dst``; in-kernel (even reflinked) when possible."""
    offset = 0
    if hasattr(os, "copy_file_range"):
        try:
            while True:
                copied = os.copy_file_range(src, dst, 1 << 30, offset, offset)
                if copied == 0:
                    return offset
                offset += copied
        except OSError as error:
            if error.errno not in _COPY_FALLBACK:
                raise
    while True:
        chunk = os.pread(src, _COPY_CHUNK, offset)
        if not chunk:
            return offset
        write_all(dst, chunk, offset)
        offset += len(chunk)


def write_all(fd: int, data: bytes, offset: int) -> int:
    """``pwrite`` until everything is written (a short write is legal, if rare, on files).

    On the upload path for every request: the usual single full write costs one call."""
    done = os.pwrite(fd, data, offset)
    if done == len(data):
        return done
    view = memoryview(data)
    while done < len(view):
        done += os.pwrite(fd, view[done:], offset + done)
    return done


def fsync_folder(fd: int) -> None:
    """Make a rename or a creation durable; some filesystems refuse fsync on folders."""
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.EBADF, errno.EROFS):
            raise


def fix_folder_mode(dir_fd: int, name: str, mode: int) -> None:
    """Give a folder just created the exact mode (the process umask may have removed bits)."""
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        if os.fstat(fd).st_mode & 0o7777 != mode:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)
