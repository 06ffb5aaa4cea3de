"""Files being uploaded, by upload mode: atomic, atomic-resumable or direct.

Atomic uploads write a hidden temporary file beside the final one and rename it over the final
name only once the client closes the file successfully, so readers and downstream automation
never see half a file. The temporary name carries the node name and pid so a restart sweeps
only its own leftovers (``sweep.py``) on a store shared by several nodes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass

from ferryd.fs.attributes import apply_in_order, times_ns
from ferryd.fs.errors import FsError, denied, fs_error, mapped, over_limit
from ferryd.fs.names import temp_name
from ferryd.fs.oscalls import copy_fd, fsync_folder, rename_noreplace, write_all

MODES = ("atomic", "atomic-resumable", "direct")
_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


@dataclass(frozen=True, slots=True)
class UploadPolicy:
    """What the account's configuration says about every upload."""

    mode: str = "atomic"
    node_name: str = "node"
    umask: int = 0o022
    limit: int = 0


@dataclass(frozen=True, slots=True)
class OpenFlags:
    """The client's open request, protocol-neutral."""

    create: bool = True
    truncate: bool = True
    exclusive: bool = False
    append: bool = False
    read: bool = False
    mode: int | None = None


class WriteHandle:
    """A file open for writing; ``commit`` on a clean close, ``abort`` when the link drops."""

    def __init__(
        self,
        *,
        virtual: str,
        real: str,
        fd: int,
        dir_fd: int,
        name: str,
        temp: str | None,
        policy: UploadPolicy,
        flags: OpenFlags,
        created: bool,
        may_set_attributes: bool = True,
    ) -> None:
        self.virtual = virtual
        self.real = real
        self.bytes_written = 0
        self._fd = fd
        self._dir_fd = dir_fd
        self._name = name
        self._temp = temp
        self._policy = policy
        self._flags = flags
        self._created = created
        self._error: FsError | None = None
        self._may_set_attributes = may_set_attributes

    @property
    def failed(self) -> bool:
        """A write failed (limit, disk): the upload can only be discarded."""
        return self._error is not None

    @property
    def temporary_name(self) -> str | None:
        """The hidden name written to until publication (None for in-place writes)."""
        return self._temp

    def _open_fd(self) -> int:
        if self._fd < 0:
            raise fs_error(errno.EBADF, self.virtual, "file is closed")
        return self._fd

    def _fail(self, error: FsError) -> FsError:
        self._error = error
        return error

    def _check_limit(self, end: int) -> None:
        limit = self._policy.limit
        if limit > 0 and end > limit:
            raise self._fail(over_limit(limit, self.virtual))

    def pwrite(self, offset: int, data: bytes) -> int:
        """Write ``data`` at ``offset`` (at the end for append opens); all of it or an error."""
        fd = self._open_fd()
        if self._error is not None:
            raise self._error
        # The hot path of every upload: plain try/except, no context manager per request.
        try:
            if self._flags.append:
                offset = os.fstat(fd).st_size
            self._check_limit(offset + len(data))
            written = write_all(fd, data, offset)
        except FsError as error:
            raise self._fail(error) from None
        except OSError as error:
            raise self._fail(fs_error(error.errno or errno.EIO, self.virtual)) from None
        self.bytes_written += written
        return written

    def pread(self, offset: int, size: int) -> bytes:
        """Read back, for files opened for reading and writing."""
        fd = self._open_fd()
        if not self._flags.read:
            raise fs_error(errno.EBADF, self.virtual, "file is not open for reading")
        with mapped(self.virtual):
            return os.pread(fd, size, offset)

    def fstat(self) -> os.stat_result:
        with mapped(self.virtual):
            return os.fstat(self._open_fd())

    def seek(self, offset: int, whence: int) -> int:
        """``lseek`` (sparse-file questions); writes use explicit offsets."""
        with mapped(self.virtual):
            return os.lseek(self._open_fd(), offset, whence)

    def set_attributes(
        self,
        *,
        size: int | None = None,
        mode: int | None = None,
        atime: float | None = None,
        mtime: float | None = None,
    ) -> None:
        """fsetstat on the open file: an atomic upload keeps them when it is published.

        Everything is checked before anything changes, so a refused request leaves the
        file as it was (a denied mode change does not truncate first)."""
        fd = self._open_fd()
        if not self._may_set_attributes:
            raise denied("set-attributes", self.virtual)
        limit = self._policy.limit
        if size is not None and limit > 0 and size > limit:
            # Refused, and the upload carries on: unlike a WRITE past the limit, nothing
            # was written, so the handle is not failed.
            raise over_limit(limit, self.virtual)
        with mapped(self.virtual):
            current = os.fstat(fd)
            times = times_ns(current, atime, mtime)
            apply_in_order(fd, self.virtual, current, size=size, mode=mode, times=times)

    def fsync(self) -> None:
        with mapped(self.virtual):
            os.fsync(self._open_fd())

    def commit(self) -> None:
        """The client closed the file: fsync, publish, fsync the folder. Blocking (thread it).

        A failed handle (write limit, write error) is discarded instead, and its error raised.
        """
        if self._fd < 0:
            return
        try:
            if self._error is not None:
                self._discard()
                raise self._error
            with mapped(self.virtual):
                self._sync_or_discard()
                if self._temp is not None:
                    self._publish()
                elif self._created:
                    fsync_folder(self._dir_fd)
        finally:
            self._close()

    def _sync_or_discard(self) -> None:
        """fsync the data; when that fails (EIO, or ENOSPC/EDQUOT reported late by NFS or
        quotas) the hidden temporary file goes, instead of staying until a restart."""
        try:
            os.fsync(self._fd)
        except OSError:
            self._discard()
            raise

    def abort(self) -> None:
        """The connection was cut: drop the upload, or publish it when resumable.

        Descriptors are closed whatever happens; a failed publication is raised.
        """
        if self._fd < 0:
            return
        try:
            if self._temp is None:
                return
            if self._policy.mode != "atomic-resumable":
                self._discard()
                return
            with mapped(self.virtual):
                self._sync_or_discard()
                self._publish()
        finally:
            self._close()

    def _publish(self) -> None:
        assert self._temp is not None
        try:
            if self._flags.exclusive:
                rename_noreplace(self._dir_fd, self._temp, self._dir_fd, self._name)
            else:
                os.rename(self._temp, self._name, src_dir_fd=self._dir_fd, dst_dir_fd=self._dir_fd)
        except OSError:
            self._discard()
            raise
        self._temp = None
        fsync_folder(self._dir_fd)

    def _discard(self) -> None:
        if self._temp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._temp, dir_fd=self._dir_fd)
            self._temp = None

    def _close(self) -> None:
        for fd in (self._fd, self._dir_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._dir_fd = -1


def open_upload(
    dir_fd: int,
    name: str,
    existing: os.stat_result | None,
    *,
    virtual: str,
    real: str,
    policy: UploadPolicy,
    flags: OpenFlags,
    may_set_attributes: bool = True,
) -> WriteHandle:
    """Open ``name`` in the (jailed) folder ``dir_fd`` for writing, as the policy says.

    ``existing`` is its ``lstat`` (None: absent). The handle keeps a duplicate of ``dir_fd``.
    """
    if existing is not None:
        if stat.S_ISDIR(existing.st_mode):
            raise fs_error(errno.EISDIR, virtual)
        if not stat.S_ISREG(existing.st_mode):
            raise fs_error(errno.EACCES, virtual, "not a regular file")
        if flags.exclusive and flags.create:
            raise fs_error(errno.EEXIST, virtual)
    elif not flags.create:
        raise fs_error(errno.ENOENT, virtual, "no such file")
    if policy.mode not in MODES:
        raise fs_error(errno.EINVAL, virtual, f"unknown upload mode {policy.mode!r}")
    in_place = policy.mode == "direct" or (
        policy.mode == "atomic-resumable" and existing is not None and not flags.truncate
    )
    wanted = (0o666 if flags.mode is None else flags.mode) & 0o777 & ~policy.umask
    with mapped(virtual):
        folder = os.dup(dir_fd)
        try:
            if in_place:
                fd = _open_in_place(folder, name, existing, flags, wanted)
                temp, created = None, existing is None
            else:
                temp = temp_name(policy.node_name, name)
                fd = _open_temp(folder, name, temp, existing, flags, wanted)
                created = True
        except BaseException:
            os.close(folder)
            raise
    return WriteHandle(
        virtual=virtual,
        real=real,
        fd=fd,
        dir_fd=folder,
        name=name,
        temp=temp,
        policy=policy,
        flags=flags,
        created=created,
        may_set_attributes=may_set_attributes,
    )


def _open_in_place(
    dir_fd: int, name: str, existing: os.stat_result | None, flags: OpenFlags, wanted: int
) -> int:
    mode = os.O_RDWR | _FILE_FLAGS
    if existing is None:
        mode |= os.O_CREAT | os.O_EXCL
    elif flags.truncate:
        mode |= os.O_TRUNC
    fd = os.open(name, mode, wanted, dir_fd=dir_fd)
    try:
        _require_regular(fd)
        if existing is None and stat.S_IMODE(os.fstat(fd).st_mode) != wanted:
            os.fchmod(fd, wanted)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_temp(
    dir_fd: int,
    name: str,
    temp: str,
    existing: os.stat_result | None,
    flags: OpenFlags,
    wanted: int,
) -> int:
    fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | _FILE_FLAGS, 0o600, dir_fd=dir_fd)
    try:
        if existing is not None and not flags.truncate:
            source = os.open(name, os.O_RDONLY | _FILE_FLAGS, dir_fd=dir_fd)
            try:
                _require_regular(source)
                copy_fd(source, fd)
            finally:
                os.close(source)
        os.fchmod(fd, stat.S_IMODE(existing.st_mode) if existing is not None else wanted)
    except BaseException:
        os.close(fd)
        os.unlink(temp, dir_fd=dir_fd)
        raise
    return fd


def _require_regular(fd: int) -> None:
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        raise OSError(errno.EACCES, "not a regular file")
