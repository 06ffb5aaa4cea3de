"""An open file being downloaded: ``pread`` on a raw descriptor, nothing buffered."""

from __future__ import annotations

import errno
import os

from ferryd.fs.errors import fs_error, mapped


class ReadHandle:
    """A regular file opened for reading; offsets are explicit so requests may overlap."""

    __slots__ = ("_fd", "bytes_read", "real", "virtual")

    def __init__(self, virtual: str, real: str, fd: int) -> None:
        self.virtual = virtual
        self.real = real
        self.bytes_read = 0
        self._fd = fd

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

    def close(self) -> None:
        """Close the descriptor; closing twice is harmless."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)
