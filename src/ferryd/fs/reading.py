"""An open file being downloaded: ``pread`` on a raw descriptor, nothing buffered."""

from __future__ import annotations

import errno
import os

from ferryd.fs.attributes import apply_in_order, times_ns
from ferryd.fs.errors import denied, fs_error, mapped


class ReadHandle:
    """A regular file opened for reading; offsets are explicit so requests may overlap."""

    __slots__ = ("_fd", "_may_set_attributes", "bytes_read", "real", "virtual")

    def __init__(self, virtual: str, real: str, fd: int, may_set_attributes: bool) -> None:
        self.virtual = virtual
        self.real = real
        self.bytes_read = 0
        self._fd = fd
        self._may_set_attributes = may_set_attributes

    def _open_fd(self) -> int:
        if self._fd < 0:
            raise fs_error(errno.EBADF, self.virtual, "file is closed")
        return self._fd

    def pread(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset``; empty at the end of the file."""
        try:  # the download hot path: no context manager, no extra checks
            data = os.pread(self._fd, size, offset)
        except OSError as error:
            raise fs_error(error.errno or errno.EIO, self.virtual) from None
        self.bytes_read += len(data)
        return data

    def fstat(self) -> os.stat_result:
        with mapped(self.virtual):
            return os.fstat(self._open_fd())

    def seek(self, offset: int, whence: int) -> int:
        """``lseek``, for clients asking where the data of a sparse file is (``SEEK_DATA``,
        ``SEEK_HOLE``); reads use explicit offsets, so moving the position is harmless."""
        with mapped(self.virtual):
            return os.lseek(self._open_fd(), offset, whence)

    def set_attributes(
        self, *, mode: int | None = None, atime: float | None = None, mtime: float | None = None
    ) -> None:
        """fsetstat on the open file itself: a file renamed or replaced since the open is
        not looked up again by name, so the change cannot land on another file."""
        fd = self._open_fd()
        if not self._may_set_attributes:
            raise denied("set-attributes", self.virtual)
        with mapped(self.virtual):
            current = os.fstat(fd)
            times = times_ns(current, atime, mtime)
            apply_in_order(fd, self.virtual, current, size=None, mode=mode, times=times)

    def close(self) -> None:
        """Close the descriptor; closing twice is harmless."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)
