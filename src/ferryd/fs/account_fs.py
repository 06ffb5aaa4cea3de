"""The account filesystem: the one way every protocol reads, lists and changes files.

Each method takes virtual paths as the client sent them, checks the account's permission for
the verb at that path (and again at the canonical path when links were followed, so a link
cannot borrow the rights of its location), resolves it through the jail and acts with
``*at`` calls on the open parent folder. Methods are plain blocking OS calls, cheap enough to
call from the event loop; only ``WriteHandle.commit`` (fsync) belongs in a worker thread.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from ferryd.auth.account import Account
from ferryd.fs.attributes import change_attributes
from ferryd.fs.errors import FsError, denied, fs_error, mapped, not_found, protected
from ferryd.fs.jail import DIR_FLAGS, Jail, Location, Root, real_join
from ferryd.fs.names import is_temp, normalize, split
from ferryd.fs.oscalls import fix_folder_mode, rename_noreplace
from ferryd.fs.prepare import prepare_account
from ferryd.fs.reading import ReadHandle
from ferryd.fs.uploads import OpenFlags, UploadPolicy, WriteHandle, open_upload

_MISSING = (errno.ENOENT, errno.ENOTDIR)
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class AccountFS:
    """The jailed, permission-checked view of the filesystem one session runs with."""

    def __init__(self, account: Account, *, node_name: str = "node") -> None:
        self._account = account
        self._jail = Jail(account.home, account.virtual_folders)
        self._uploads = UploadPolicy(
            mode=account.upload_mode,
            node_name=node_name,
            umask=account.umask,
            limit=account.file_write_size,
        )

    @classmethod
    def prepared(cls, account: Account, node_name: str) -> tuple[AccountFS, bool]:
        """A login's filesystem, its home created if needed (True then). Blocking."""
        fs = cls(account, node_name=node_name)
        return fs, fs.prepare()

    def prepare(self) -> bool:
        """At login: create the home and folders the account needs; raise to refuse the login.
        True when the home was created now."""
        return prepare_account(self._jail, self._account)

    def normalize(self, path: str | bytes, cwd: str = "/") -> str:
        """The absolute virtual path; ``..`` never climbs above ``/``."""
        return normalize(path, cwd)

    def real_path(self, virtual: str) -> str:
        """The real path ``virtual`` resolves to, for events (never for clients)."""
        path = normalize(virtual)
        try:
            with self._jail.at(path, follow_last=True) as location:
                return location.real
        except FsError as error:
            if error.errno in _MISSING and self._jail.is_ancestor(path):
                return self._jail.real_of(path)
            raise

    # -- checks ---------------------------------------------------------------------------

    def _allow(self, virtual: str, verbs: tuple[str, ...]) -> None:
        if is_temp(split(virtual)[1]):
            raise not_found(virtual)
        for verb in verbs:
            if not self._account.permissions.permits(verb, virtual):
                raise denied(verb, virtual)

    def _checked(self, path: str, *verbs: str) -> str:
        virtual = normalize(path)
        self._allow(virtual, verbs)
        return virtual

    @contextmanager
    def _at(self, virtual: str, verbs: tuple[str, ...], *, follow: bool) -> Iterator[Location]:
        """Resolve, re-check permissions at the canonical path, map OS errors to ``virtual``."""
        with self._jail.at(virtual, follow_last=follow) as location:
            if location.virtual != virtual:
                self._allow(location.virtual, verbs)
            with mapped(virtual):
                yield location

    def _changeable(self, location: Location, virtual: str, code: int = errno.EACCES) -> str:
        """The last name, unless the object is a root or a virtual folder's parent."""
        if location.name is None or self._jail.is_protected(location.virtual):
            raise protected(virtual) if code == errno.EACCES else fs_error(code, virtual)
        return location.name

    def _unprotected(self, virtual: str, code: int = errno.EACCES) -> None:
        if self._jail.is_protected(virtual):
            raise protected(virtual) if code == errno.EACCES else fs_error(code, virtual)

    def _root_stat(self, root: Root | None) -> os.stat_result | None:
        """A virtual folder's stat (the home's for synthetic parents); None when missing."""
        try:
            fd = (root or self._jail.home).open()
        except OSError:
            return None
        try:
            return os.fstat(fd)
        finally:
            os.close(fd)

    def _synthetic(self, virtual: str, error: FsError) -> os.stat_result:
        """Parents of nested virtual folders exist even when the home has no such folder."""
        if error.errno in _MISSING and self._jail.is_ancestor(virtual):
            found = self._root_stat(None)
            if found is not None:
                return found
        raise error

    # -- metadata -------------------------------------------------------------------------

    def stat(self, path: str) -> os.stat_result:
        """Attributes of the object, links followed inside the jail."""
        return self._stat(path, follow=True)

    def lstat(self, path: str) -> os.stat_result:
        """Attributes of the entry itself (a link is not followed)."""
        return self._stat(path, follow=False)

    def _stat(self, path: str, *, follow: bool) -> os.stat_result:
        virtual = self._checked(path, "traverse")
        try:
            with self._at(virtual, ("traverse",), follow=follow) as location:
                found = location.entry()
        except FsError as error:
            return self._synthetic(virtual, error)
        if found is None:
            return self._synthetic(virtual, not_found(virtual))
        return found

    def listdir(self, path: str) -> list[tuple[str, os.stat_result]]:
        """Entries with their ``lstat``, virtual folders added and upload temporaries hidden."""
        virtual = self._checked(path, "list")
        entries: dict[str, os.stat_result] = {}
        where = virtual
        try:
            with self._at(virtual, ("list",), follow=True) as location:
                where = location.virtual
                entries = _read_folder(location)
        except FsError as error:
            self._synthetic(virtual, error)
        for name, root in self._jail.children(where).items():
            found = self._root_stat(root)
            if found is not None:
                entries[name] = found
        return sorted(entries.items())

    def realpath(self, path: str) -> str:
        """The canonical virtual path, in-jail links followed (the last name may be missing)."""
        virtual = self._checked(path, "traverse")
        try:
            with self._at(virtual, ("traverse",), follow=True) as location:
                return location.virtual
        except FsError as error:
            self._synthetic(virtual, error)
            return virtual

    def readlink(self, path: str) -> str:
        """The virtual path a link points to; EACCES when it points outside the jail."""
        virtual = self._checked(path, "traverse")
        with self._at(virtual, ("traverse",), follow=False) as location:
            return self._jail.link_target(location, virtual)

    def statvfs(self, path: str) -> os.statvfs_result:
        """Space of the filesystem holding ``path`` (its parent folder's, to stay cheap)."""
        virtual = self._checked(path, "traverse")
        try:
            with self._at(virtual, ("traverse",), follow=False) as location:
                return os.statvfs(location.dir_fd)
        except FsError as error:
            self._synthetic(virtual, error)
            fd = self._jail.home.open()
            try:
                return os.statvfs(fd)
            finally:
                os.close(fd)

    # -- changes --------------------------------------------------------------------------

    def mkdir(self, path: str, mode: int | None = None) -> None:
        virtual = self._checked(path, "create-folder")
        self._unprotected(virtual, errno.EEXIST)
        wanted = (0o777 if mode is None else mode) & 0o777 & ~self._account.umask
        with self._at(virtual, ("create-folder",), follow=False) as location:
            name = self._changeable(location, virtual, errno.EEXIST)
            os.mkdir(name, wanted, dir_fd=location.dir_fd)
            fix_folder_mode(location.dir_fd, name, wanted)

    def rmdir(self, path: str) -> str:
        """Delete an empty folder; returns the real path deleted."""
        virtual = self._checked(path, "delete-folder")
        self._unprotected(virtual)
        with self._at(virtual, ("delete-folder",), follow=False) as location:
            os.rmdir(self._changeable(location, virtual), dir_fd=location.dir_fd)
            return location.real

    def remove(self, path: str) -> str:
        """Delete a file or a link (never what it points to); EISDIR on a folder. Returns the
        real path deleted (the link's own, for a link)."""
        virtual = self._checked(path, "delete-file")
        self._unprotected(virtual)
        with self._at(virtual, ("delete-file",), follow=False) as location:
            name = self._changeable(location, virtual)
            found = location.entry()
            if found is None:
                raise not_found(virtual)
            if stat.S_ISDIR(found.st_mode):
                raise fs_error(errno.EISDIR, virtual)
            os.unlink(name, dir_fd=location.dir_fd)
            return location.real

    def rename(self, old: str, new: str, *, overwrite: bool) -> None:
        """Move an entry; without ``overwrite`` an existing ``new`` is EEXIST (SFTP v3)."""
        source = self._checked(old, "rename")
        target = self._checked(new, "rename")
        self._unprotected(source)
        self._unprotected(target)
        with ExitStack() as stack:
            src = stack.enter_context(self._at(source, ("rename",), follow=False))
            dst = stack.enter_context(self._at(target, ("rename",), follow=False))
            src_name = self._changeable(src, source)
            dst_name = self._changeable(dst, target)
            found = src.entry()
            if found is None:
                raise not_found(source)
            if stat.S_ISLNK(found.st_mode):
                self._link_stays_inside(src, dst, source, target)
            replaced = dst.entry() if overwrite else None
            if replaced is not None:
                # Replacing destroys what was there: as much as an upload over a file
                # ('write') or removing a folder ('delete-folder') would need.
                verb = "delete-folder" if stat.S_ISDIR(replaced.st_mode) else "write"
                self._allow(dst.virtual, (verb,))
            with mapped(f"{source} -> {target}"):
                if overwrite:
                    os.rename(src_name, dst_name, src_dir_fd=src.dir_fd, dst_dir_fd=dst.dir_fd)
                else:
                    rename_noreplace(src.dir_fd, src_name, dst.dir_fd, dst_name)

    def _link_stays_inside(self, src: Location, dst: Location, source: str, target: str) -> None:
        """A link is stored relative to its folder: moved elsewhere it may lead out of the
        jail on disk. ferryd would refuse to follow it, but backups and other programs
        reading the folder would not, so such a move is refused."""
        assert src.name is not None
        with mapped(source):
            pointed = os.readlink(src.name, dir_fd=src.dir_fd)
        inside_now = self._jail.to_virtual(real_join(posixpath.dirname(src.real), pointed))
        inside_there = self._jail.to_virtual(real_join(posixpath.dirname(dst.real), pointed))
        if inside_now is not None and inside_there is None:
            raise fs_error(
                errno.EPERM, target, "the link would point outside the home folder from there"
            )

    def symlink(self, target: str | bytes, link: str) -> None:
        """Create ``link`` to a virtual ``target``, stored relative so it never leaves the jail."""
        virtual = self._checked(link, "write")
        self._unprotected(virtual, errno.EEXIST)
        pointed = normalize(target, split(virtual)[0])
        if is_temp(split(pointed)[1]):
            raise not_found(pointed)
        try:
            with self._jail.at(pointed, follow_last=True):
                pass
        except FsError as error:
            if error.errno not in _MISSING:
                raise
        with self._at(virtual, ("write",), follow=False) as location:
            name = self._changeable(location, virtual, errno.EEXIST)
            folder = posixpath.dirname(location.real)
            relative = posixpath.relpath(self._jail.real_of(pointed), folder)
            os.symlink(relative, name, dir_fd=location.dir_fd)

    def link(self, old: str, new: str) -> None:
        """Hard link the regular file ``old`` (links followed inside the jail) as ``new``.

        Both names are one file: whatever the new name's rules allow to change in it
        (content, attributes) must be allowed at the old name too, or the link would be a
        way around the old name's rules."""
        target = self._checked(new, "write")
        shared = tuple(
            verb
            for verb in ("write", "set-attributes")
            if self._account.permissions.permits(verb, target)
        )
        source = self._checked(old, "read", *shared)
        self._unprotected(target, errno.EEXIST)
        with ExitStack() as stack:
            src = stack.enter_context(self._at(source, ("read", *shared), follow=True))
            dst = stack.enter_context(self._at(target, ("write",), follow=False))
            # The new name's real place may allow more than the path the client sent (a
            # symlinked folder on the way): what it allows must hold at the old name too.
            if dst.virtual != target:
                for verb in ("write", "set-attributes"):
                    permits = self._account.permissions.permits
                    if permits(verb, dst.virtual) and not permits(verb, src.virtual):
                        raise denied(verb, source)
            found = src.entry()
            if found is None:
                raise not_found(source)
            if src.name is None or not stat.S_ISREG(found.st_mode):
                raise fs_error(errno.EPERM, source, "not a regular file")
            dst_name = self._changeable(dst, target, errno.EEXIST)
            with mapped(f"{source} -> {target}"):
                os.link(
                    src.name,
                    dst_name,
                    src_dir_fd=src.dir_fd,
                    dst_dir_fd=dst.dir_fd,
                    follow_symlinks=False,
                )

    def setstat(
        self,
        path: str,
        *,
        size: int | None = None,
        mode: int | None = None,
        atime: float | None = None,
        mtime: float | None = None,
        follow: bool = True,
    ) -> None:
        """Change size (needs 'write' too), mode and times; roots keep their size and mode."""
        verbs = ("set-attributes", "write") if size is not None else ("set-attributes",)
        virtual = self._checked(path, *verbs)
        if (size is not None or mode is not None) and self._jail.is_protected(virtual):
            raise protected(virtual)
        try:
            with self._at(virtual, verbs, follow=follow) as location:
                if (size is not None or mode is not None) and (
                    location.name is None or self._jail.is_protected(location.virtual)
                ):
                    raise protected(virtual)
                change_attributes(
                    location,
                    virtual,
                    size=size,
                    mode=mode,
                    atime=atime,
                    mtime=mtime,
                    limit=self._account.file_write_size,
                )
        except FsError as error:
            self._synthetic(virtual, error)

    # -- files ----------------------------------------------------------------------------

    def open_read(self, path: str) -> ReadHandle:
        virtual = self._checked(path, "read")
        self._unprotected(virtual, errno.EISDIR)
        with self._at(virtual, ("read",), follow=True) as location:
            name = self._changeable(location, virtual, errno.EISDIR)
            found = location.entry()
            if found is None:
                raise not_found(virtual)
            if stat.S_ISDIR(found.st_mode):
                raise fs_error(errno.EISDIR, virtual)
            fd = os.open(name, _READ_FLAGS, dir_fd=location.dir_fd)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise fs_error(errno.EACCES, virtual, "not a regular file")
            except BaseException:
                os.close(fd)
                raise
            return ReadHandle(
                virtual, location.real, fd, self._may_set_attributes(virtual, location)
            )

    def _may_set_attributes(self, virtual: str, location: Location) -> bool:
        """fsetstat on an open file: allowed where it was opened and where it really is,
        decided at the open, as the handle keeps the file whatever is renamed later."""
        permits = self._account.permissions.permits
        return permits("set-attributes", virtual) and permits("set-attributes", location.virtual)

    def open_write(
        self,
        path: str,
        *,
        create: bool,
        truncate: bool,
        exclusive: bool,
        append: bool,
        read: bool = False,
        mode: int | None = None,
    ) -> WriteHandle:
        """Open for writing, through a hidden temporary file unless the mode is ``direct``."""
        verbs = ("write", "read") if read else ("write",)
        virtual = self._checked(path, *verbs)
        self._unprotected(virtual, errno.EISDIR)
        flags = OpenFlags(create, truncate, exclusive, append, read, mode)
        with self._at(virtual, verbs, follow=True) as location:
            name = self._changeable(location, virtual, errno.EISDIR)
            attributes = self._may_set_attributes(virtual, location)
            return open_upload(
                location.dir_fd,
                name,
                location.entry(),
                virtual=virtual,
                real=location.real,
                policy=self._uploads,
                flags=flags,
                may_set_attributes=attributes,
            )


def _read_folder(location: Location) -> dict[str, os.stat_result]:
    """``lstat`` of every entry except upload temporaries."""
    if location.name is None:
        fd = os.dup(location.dir_fd)
    else:
        fd = os.open(location.name, DIR_FLAGS, dir_fd=location.dir_fd)
    entries: dict[str, os.stat_result] = {}
    try:
        with os.scandir(fd) as scan:
            for entry in scan:
                if is_temp(entry.name):
                    continue
                try:
                    entries[entry.name] = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
    finally:
        os.close(fd)
    return entries
