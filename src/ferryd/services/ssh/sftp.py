"""SFTP (and SCP, which asyncssh runs on the same object) mapped onto the account filesystem.

This adapter decides no policy: the account filesystem checks the jail and permissions and
publishes uploads; here requests are translated, and every outcome becomes an event. Errors
are ``OSError`` with an errno, which asyncssh turns into the status codes clients expect.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import stat
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncssh
from asyncssh import SFTPAttrs, SFTPName
from asyncssh.sftp import SFTPServerHandler

from ferryd.events.event import AccountRef
from ferryd.fs.account_fs import AccountFS
from ferryd.fs.errors import fs_error
from ferryd.fs.reading import ReadHandle
from ferryd.fs.uploads import WriteHandle

Emit = Callable[..., Any]


def _mode_text(pflags: int) -> str:
    if pflags & asyncssh.FXF_READ and pflags & asyncssh.FXF_WRITE:
        return "reading and writing"
    if pflags & asyncssh.FXF_APPEND:
        return "writing with append"
    return "writing" if pflags & asyncssh.FXF_WRITE else "reading"


class _Opened:
    """A handle with what its close event needs."""

    __slots__ = ("handle", "started")

    def __init__(self, handle: ReadHandle | WriteHandle) -> None:
        self.handle = handle
        self.started = time.monotonic()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """asyncssh answers ``ranges@asyncssh.com`` (where a sparse file has data, which its
        own client asks before a download) by seeking the open file object itself."""
        return self.handle.seek(offset, whence)


_SESSION_CLEANUP = SFTPServerHandler._cleanup.__code__

_FILE_TYPES = {
    stat.S_IFREG: asyncssh.FILEXFER_TYPE_REGULAR,
    stat.S_IFDIR: asyncssh.FILEXFER_TYPE_DIRECTORY,
    stat.S_IFLNK: asyncssh.FILEXFER_TYPE_SYMLINK,
    stat.S_IFSOCK: asyncssh.FILEXFER_TYPE_SOCKET,
    stat.S_IFCHR: asyncssh.FILEXFER_TYPE_CHAR_DEVICE,
    stat.S_IFBLK: asyncssh.FILEXFER_TYPE_BLOCK_DEVICE,
    stat.S_IFIFO: asyncssh.FILEXFER_TYPE_FIFO,
}


def attributes(found: os.stat_result) -> SFTPAttrs:
    """A stat result as protocol version 3 attributes, the only version ferryd's service
    negotiates: size, ids, type and mode, whole-second times, and the link count listings
    show. asyncssh's ``SFTPAttrs.from_local`` also looks the owner's and group's names up
    in the system databases (12 of the 16 us it takes) for every stat and listed entry,
    names version 3 never carries; listings name the account (``format_user``)."""
    return SFTPAttrs(
        type=_FILE_TYPES.get(stat.S_IFMT(found.st_mode), asyncssh.FILEXFER_TYPE_SPECIAL),
        size=found.st_size,
        uid=found.st_uid,
        gid=found.st_gid,
        permissions=found.st_mode,
        atime=found.st_atime_ns // 1_000_000_000,
        mtime=found.st_mtime_ns // 1_000_000_000,
        nlink=found.st_nlink,
    )


class SftpSession(asyncssh.SFTPServer):
    """One SFTP or SCP session of an authenticated account."""

    def __init__(
        self,
        chan: asyncssh.SSHServerChannel[bytes],
        fs: AccountFS,
        account: AccountRef,
        emit: Emit,
        touch: Callable[[], None],
        subsystem: str,
    ) -> None:
        super().__init__(chan)
        self._fs = fs
        self._account = account
        self._emit = emit
        self._touch = touch
        self._open: set[_Opened] = set()
        self._started = time.monotonic()
        self._subsystem = subsystem
        emit("30011", account=account, subsystem=subsystem, username=account.name, home="/")

    # -- helpers -----------------------------------------------------------------------

    def _path(self, path: bytes) -> str:
        self._touch()
        return self._fs.normalize(path)

    def _file(self, virtual: str, real: str = "", size: int | None = None) -> dict[str, Any]:
        return {
            "path": virtual,
            "real_path": real,
            "name": virtual.rsplit("/", 1)[-1],
            "size": size,
        }

    def _event(self, event_id: str, virtual: str, real: str = "", **data: Any) -> None:
        self._emit(
            event_id,
            account=self._account,
            username=self._account.name,
            path=virtual,
            real_path=real,
            file=self._file(virtual, real, data.get("size")),
            **data,
        )

    def _failed(self, operation: str, path: bytes | str, error: OSError) -> None:
        virtual = path if isinstance(path, str) else path.decode("utf-8", "replace")
        self._event("30041", virtual, operation=operation, reason=error.strerror or str(error))

    def _changed(self, operation: str, virtual: str, details: str = "", **data: Any) -> None:
        real = self._real(virtual)
        self._event("30050", virtual, real, operation=operation, details=details, **data)

    def _real(self, virtual: str) -> str:
        try:
            return self._fs.real_path(virtual)
        except OSError:
            return ""

    # -- metadata ----------------------------------------------------------------------

    def format_user(self, uid: int | None) -> str:
        return self._account.name

    def format_group(self, gid: int | None) -> str:
        return self._account.name

    def realpath(self, path: bytes) -> bytes:
        try:
            return self._fs.realpath(self._path(path)).encode()
        except OSError as error:
            self._failed("realpath", path, error)
            raise

    def stat(self, path: bytes) -> SFTPAttrs:
        try:
            return attributes(self._fs.stat(self._path(path)))
        except OSError as error:
            self._failed("stat", path, error)
            raise

    def lstat(self, path: bytes) -> SFTPAttrs:
        try:
            return attributes(self._fs.lstat(self._path(path)))
        except OSError as error:
            self._failed("lstat", path, error)
            raise

    async def scandir(self, path: bytes) -> AsyncIterator[SFTPName]:
        try:
            virtual = self._path(path)
            # One lstat per entry: a large folder must not hold up other sessions.
            entries = await asyncio.to_thread(self._fs.listdir, virtual)
        except OSError as error:
            self._failed("list", path, error)
            raise
        with contextlib.suppress(OSError):
            here = attributes(self._fs.stat(virtual))
            yield SFTPName(b".", attrs=here)
            yield SFTPName(b"..", attrs=here)
        for name, found in entries:
            yield SFTPName(name.encode(), attrs=attributes(found))

    def readlink(self, path: bytes) -> bytes:
        try:
            return self._fs.readlink(self._path(path)).encode()
        except OSError as error:
            self._failed("readlink", path, error)
            raise

    def statvfs(self, path: bytes) -> os.statvfs_result:
        return self._fs.statvfs(self._path(path))

    # -- changes -----------------------------------------------------------------------

    def setstat(self, path: bytes, attrs: SFTPAttrs) -> None:
        virtual = ""
        try:
            virtual = self._path(path)
            self._setstat(virtual, attrs)
        except OSError as error:
            self._failed("setstat", virtual or path, error)
            raise

    def lsetstat(self, path: bytes, attrs: SFTPAttrs) -> None:
        virtual = ""
        try:
            virtual = self._path(path)
            self._setstat(virtual, attrs, follow=False)
        except OSError as error:
            self._failed("setstat", virtual or path, error)
            raise

    def _setstat(self, virtual: str, attrs: SFTPAttrs, follow: bool = True) -> None:
        mode = attrs.permissions & 0o7777 if attrs.permissions is not None else None
        atime = float(attrs.atime) if attrs.atime is not None else None
        mtime = float(attrs.mtime) if attrs.mtime is not None else None
        self._fs.setstat(
            virtual, size=attrs.size, mode=mode, atime=atime, mtime=mtime, follow=follow
        )
        self._changed("setstat", virtual, _details(attrs.size, mode, mtime))

    def remove(self, path: bytes) -> None:
        self._delete("delete", path, self._fs.remove)

    def _delete(self, operation: str, path: bytes, delete: Callable[[str], str]) -> None:
        """File or folder deletion; the event names the real path that was deleted."""
        virtual = ""
        try:
            virtual = self._path(path)
            real = delete(virtual)
        except OSError as error:
            self._failed(operation, virtual or path, error)
            raise
        self._event("30050", virtual, real, operation=operation, details="")

    def mkdir(self, path: bytes, attrs: SFTPAttrs) -> None:
        virtual = ""
        try:
            virtual = self._path(path)
            mode = attrs.permissions & 0o7777 if attrs.permissions is not None else None
            self._fs.mkdir(virtual, mode)
        except OSError as error:
            self._failed("mkdir", virtual or path, error)
            raise
        self._changed("mkdir", virtual)

    def rmdir(self, path: bytes) -> None:
        self._delete("rmdir", path, self._fs.rmdir)

    def rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._rename(oldpath, newpath, overwrite=False)

    def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        self._rename(oldpath, newpath, overwrite=True)

    def _rename(self, oldpath: bytes, newpath: bytes, *, overwrite: bool) -> None:
        old = ""
        try:
            old, new = self._path(oldpath), self._path(newpath)
            self._fs.rename(old, new, overwrite=overwrite)
        except OSError as error:
            self._failed("rename", old or oldpath, error)
            raise
        self._changed("rename", new, f" (from {old})", destination=new)

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        link = ""
        try:
            link = self._path(newpath)
            target = oldpath.decode("utf-8")
            self._fs.symlink(target, link)
        except (OSError, UnicodeDecodeError) as error:
            failure = error if isinstance(error, OSError) else OSError(22, "invalid UTF-8")
            self._failed("symlink", link or newpath, failure)
            raise failure from None
        self._changed("symlink", link, f" -> {target}")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        new = ""
        try:
            old, new = self._path(oldpath), self._path(newpath)
            self._fs.link(old, new)
        except OSError as error:
            self._failed("link", new or newpath, error)
            raise
        self._changed("link", new, f" (to {old})")

    # -- files -------------------------------------------------------------------------

    async def open(self, path: bytes, pflags: int, attrs: SFTPAttrs) -> _Opened:
        virtual = ""
        mode_text = _mode_text(pflags)
        try:
            virtual = self._path(path)
            handle: ReadHandle | WriteHandle
            if pflags & (asyncssh.FXF_WRITE | asyncssh.FXF_APPEND):
                mode = attrs.permissions & 0o7777 if attrs.permissions is not None else None
                truncate = bool(pflags & asyncssh.FXF_TRUNC)
                opener = functools.partial(
                    self._fs.open_write,
                    virtual,
                    create=bool(pflags & asyncssh.FXF_CREAT),
                    truncate=truncate,
                    exclusive=bool(pflags & asyncssh.FXF_EXCL),
                    append=bool(pflags & asyncssh.FXF_APPEND),
                    read=bool(pflags & asyncssh.FXF_READ),
                    mode=mode,
                )
                # Resuming an atomic upload copies the existing file first: not on the loop.
                handle = opener() if truncate else await asyncio.to_thread(opener)
                event_id = "30021"
            else:
                handle = self._fs.open_read(virtual)
                event_id = "30020"
        except OSError as error:
            self._failed("open", virtual or path, error)
            raise
        opened = _Opened(handle)
        self._open.add(opened)
        self._event(event_id, virtual, handle.real, mode=mode_text)
        return opened

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        self._touch()
        assert isinstance(file_obj, _Opened)
        return file_obj.handle.pread(offset, size)

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        self._touch()
        assert isinstance(file_obj, _Opened)
        handle = file_obj.handle
        if not isinstance(handle, WriteHandle):
            raise fs_error(errno.EACCES, handle.virtual, "file is open for reading only")
        return handle.pwrite(offset, data)

    def fstat(self, file_obj: object) -> SFTPAttrs:
        assert isinstance(file_obj, _Opened)
        return attributes(file_obj.handle.fstat())

    def fsetstat(self, file_obj: object, attrs: SFTPAttrs) -> None:
        """On the open descriptor, never the name: an atomic upload keeps the attributes
        when it is published, and a file renamed since its open is the one changed."""
        assert isinstance(file_obj, _Opened)
        handle = file_obj.handle
        mode = attrs.permissions & 0o7777 if attrs.permissions is not None else None
        atime = float(attrs.atime) if attrs.atime is not None else None
        mtime = float(attrs.mtime) if attrs.mtime is not None else None
        if isinstance(handle, WriteHandle):
            handle.set_attributes(size=attrs.size, mode=mode, atime=atime, mtime=mtime)
            return
        if attrs.size is not None:
            raise fs_error(errno.EACCES, handle.virtual, "file is open for reading only")
        handle.set_attributes(mode=mode, atime=atime, mtime=mtime)
        self._changed("setstat", handle.virtual, _details(None, mode, mtime))

    def fstatvfs(self, file_obj: object) -> os.statvfs_result:
        assert isinstance(file_obj, _Opened)
        return self._fs.statvfs(file_obj.handle.virtual)

    async def fsync(self, file_obj: object) -> None:
        assert isinstance(file_obj, _Opened)
        if isinstance(file_obj.handle, WriteHandle):
            await asyncio.to_thread(file_obj.handle.fsync)

    async def close(self, file_obj: object) -> None:
        assert isinstance(file_obj, _Opened)
        handle = file_obj.handle
        # asyncssh closes the files still open when a session ends through this same hook.
        # Only the caller tells that apart from a client's CLOSE (which may arrive together
        # with the end of the session): requests are handled one at a time, and the cleanup
        # runs after the last one.
        if isinstance(handle, WriteHandle) and sys._getframe(1).f_code is _SESSION_CLEANUP:
            return  # exit() aborts it as its upload_mode says; it was never closed
        if isinstance(handle, WriteHandle) and self._scp_input_cut():
            self._open.discard(file_obj)
            await self._abandon(file_obj, "the client stopped sending before the end of file")
            return
        self._touch()
        self._open.discard(file_obj)
        duration = round(time.monotonic() - file_obj.started, 3)
        if isinstance(handle, ReadHandle):
            handle.close()
            self._event(
                "30067", handle.virtual, handle.real, size=handle.bytes_read, duration=duration
            )
            return
        try:
            await asyncio.to_thread(handle.commit)
        except OSError as error:
            self._event(
                "30042",
                handle.virtual,
                handle.real,
                size=handle.bytes_written,
                duration=duration,
                reason=error.strerror or str(error),
            )
            raise
        self._event(
            "30068", handle.virtual, handle.real, size=handle.bytes_written, duration=duration
        )

    async def _abandon(self, opened: _Opened, reason: str) -> None:
        """An upload that was cut: dropped, or published if resumable (its upload_mode)."""
        handle = opened.handle
        assert isinstance(handle, WriteHandle)
        try:
            await asyncio.to_thread(handle.abort)
        except OSError as error:  # reported, and the other files are still cleaned up
            reason += f"; cleaning it up failed: {error.strerror or error}"
        self._event(
            "30042",
            handle.virtual,
            handle.real,
            size=handle.bytes_written,
            duration=round(time.monotonic() - opened.started, 3),
            reason=reason,
        )

    def _scp_input_cut(self) -> bool:
        """SCP has no CLOSE request: asyncssh closes the file when the announced size has
        arrived, and also when the input ended first. The client sends nothing else before
        the server's answer, so input that has ended (end of file, or the connection gone)
        means the file is incomplete. asyncssh has no public getter for the receiving side;
        its state is read defensively (an unknown state counts as still open)."""
        if self._subsystem != "SCP":
            return False
        receiving = getattr(self._chan, "_recv_state", "open")
        return self._chan.is_closing() or receiving != "open"

    async def exit(self) -> None:
        """The session ended: uploads still open were cut and follow their upload_mode."""
        for opened in list(self._open):
            self._open.discard(opened)
            if isinstance(opened.handle, ReadHandle):
                opened.handle.close()
            else:
                await self._abandon(opened, "the session ended before the file was closed")
        self._emit(
            "30012",
            account=self._account,
            subsystem=self._subsystem,
            username=self._account.name,
            duration=round(time.monotonic() - self._started, 3),
        )
        if not self._chan.is_closing():
            # Like OpenSSH's sftp-server exiting 0: OpenSSH 9's scp (over SFTP) checks it.
            self._chan.exit(0)


def _details(size: int | None, mode: int | None, mtime: float | None) -> str:
    """What a setstat changed, for its 30050 event: `` (size=0, mode=0o640)`` or nothing."""
    changes = {"size": size, "mtime": mtime, "mode": oct(mode) if mode is not None else None}
    details = ", ".join(f"{name}={value}" for name, value in changes.items() if value is not None)
    return f" ({details})" if details else ""
