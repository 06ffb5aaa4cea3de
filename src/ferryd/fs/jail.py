"""Resolve virtual paths to folder descriptors that cannot be outside the account's jail.

The jail is the home folder plus the real roots of the virtual folders. A path is never handed
to the OS whole: the walk opens each folder with ``O_NOFOLLOW`` relative to the descriptor of
the previous one, starting from a root, and the final operation uses that folder descriptor and
the last name. A symbolic link met on the way is read, its target is translated back to a
virtual path (refused if it lies outside every root) and the walk starts again from a root.
Swapping a folder for a link between two calls therefore cannot lead outside: what is opened is
always an entry reached from a root through real folders.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ferryd.config.models.access import VirtualFolder
from ferryd.fs.errors import fs_error, mapped, outside
from ferryd.fs.names import is_within, join

MAX_HOPS = 40
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def real_join(folder: str, target: str) -> str:
    """Lexical, normalised ``folder/target`` (an absolute target replaces the folder)."""
    joined = posixpath.normpath(posixpath.join(folder, target))
    return "/" + joined.lstrip("/")


@dataclass(frozen=True, slots=True)
class Root:
    """A place the jail allows: the home at ``/`` or a virtual folder's real root."""

    virtual: str
    real: str
    canonical: str

    def open(self) -> int:
        """The root's descriptor; the configured path itself is trusted and may hold links."""
        return os.open(self.real, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


@dataclass(slots=True)
class Location:
    """An open parent folder and a name in it: the object an operation acts upon.

    ``name`` is None when the object is a root itself; ``dir_fd`` is then that root.
    ``virtual`` is the canonical virtual path (links followed) and ``real`` the real one.
    """

    root: Root
    dir_fd: int
    name: str | None
    virtual: str
    real: str
    _lstat: os.stat_result | None = field(default=None, repr=False)
    _looked: bool = field(default=False, repr=False)

    def entry(self) -> os.stat_result | None:
        """The ``lstat`` of the object, or None when it does not exist."""
        if self.name is None:
            return os.fstat(self.dir_fd)
        if not self._looked:
            try:
                self._lstat = os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                self._lstat = None
            self._looked = True
        return self._lstat

    def close(self) -> None:
        if self.dir_fd >= 0:
            os.close(self.dir_fd)
            self.dir_fd = -1


class Jail:
    """The roots of one account and the walk that keeps every operation inside them."""

    def __init__(self, home: Path, folders: Iterable[VirtualFolder]) -> None:
        self._home = str(home)
        self._folders = tuple(folders)
        self.home: Root
        self.folders: tuple[Root, ...]
        self.refresh()

    @staticmethod
    def _root(virtual: str, real: str) -> Root:
        configured = posixpath.normpath(os.path.abspath(real))
        return Root(virtual, configured, os.path.realpath(configured))

    def refresh(self) -> None:
        """Recompute canonical root paths (after ``prepare`` created missing roots)."""
        self.home = self._root("/", self._home)
        self.folders = tuple(self._root(f.virtual, f.real) for f in self._folders)

    @property
    def roots(self) -> tuple[Root, ...]:
        return (self.home, *self.folders)

    # -- pure path arithmetic -------------------------------------------------------------

    def mount(self, virtual: str) -> tuple[Root, list[str]]:
        """The root serving ``virtual`` (longest virtual prefix) and the names below it."""
        best = self.home
        for root in self.folders:
            if is_within(virtual, root.virtual) and len(root.virtual) > len(best.virtual):
                best = root
        rest = virtual[len(best.virtual) :] if best.virtual != "/" else virtual
        return best, [part for part in rest.split("/") if part]

    def real_of(self, virtual: str) -> str:
        """Lexical real path of ``virtual`` (no link followed, nothing touched)."""
        root, rest = self.mount(virtual)
        return join(root.canonical, *rest)

    def to_virtual(self, real: str) -> str | None:
        """The virtual path of a real one, through the root with the longest real prefix."""
        best: tuple[int, Root, str] | None = None
        for root in self.roots:
            for base in {root.real, root.canonical}:
                if is_within(real, base) and (best is None or len(base) > best[0]):
                    best = (len(base), root, base)
        if best is None:
            return None
        _, root, base = best
        rest = real[len(base) :] if base != "/" else real
        return join(root.virtual, *[part for part in rest.split("/") if part])

    def is_root(self, virtual: str) -> bool:
        return virtual == "/" or any(root.virtual == virtual for root in self.folders)

    def is_ancestor(self, virtual: str) -> bool:
        """True when a virtual folder lies strictly below ``virtual``."""
        return any(
            root.virtual != virtual and is_within(root.virtual, virtual) for root in self.folders
        )

    def is_protected(self, virtual: str) -> bool:
        """Home, virtual folders and their parents: never removed, renamed or replaced."""
        return self.is_root(virtual) or self.is_ancestor(virtual)

    def children(self, virtual: str) -> dict[str, Root | None]:
        """Names under ``virtual`` that virtual folders add: their root, or None (synthetic)."""
        found: dict[str, Root | None] = {}
        for root in self.folders:
            if root.virtual == virtual or not is_within(root.virtual, virtual):
                continue
            below = root.virtual[len(virtual) :] if virtual != "/" else root.virtual
            name, _, deeper = below.strip("/").partition("/")
            if not deeper:
                found[name] = root
            else:
                found.setdefault(name, None)
        return found

    # -- the walk -----------------------------------------------------------------------

    @contextmanager
    def at(self, virtual: str, *, follow_last: bool) -> Iterator[Location]:
        """``locate`` as a context manager that closes the folder descriptor."""
        location = self.locate(virtual, follow_last=follow_last)
        try:
            yield location
        finally:
            location.close()

    def locate(self, virtual: str, *, follow_last: bool) -> Location:
        """Open the parent folder of ``virtual`` inside the jail; the caller closes it.

        In-jail links in the parents are followed, and the last name too when ``follow_last``.
        Errors name ``virtual``, the path the client asked for, wherever links led.
        """
        shown = virtual
        pending = virtual
        for _ in range(MAX_HOPS + 1):
            root, parts = self.mount(pending)
            with mapped(shown):
                fd = root.open()
            found = self._walk(root, fd, parts, follow_last, shown)
            if isinstance(found, Location):
                return found
            pending = found
        raise fs_error(errno.ELOOP, shown)

    def _walk(
        self, root: Root, fd: int, parts: list[str], follow_last: bool, shown: str
    ) -> Location | str:
        """Descend from ``fd`` (owned); a Location, or the virtual path a link sends us to."""
        real, virtual = root.canonical, root.virtual
        try:
            with mapped(shown):
                for index, name in enumerate(parts):
                    if index == len(parts) - 1:
                        owned, fd = fd, -1
                        return self._last(root, owned, name, virtual, real, follow_last, shown)
                    try:
                        child = os.open(name, DIR_FLAGS, dir_fd=fd)
                    except OSError as error:
                        if error.errno not in (errno.ELOOP, errno.ENOTDIR):
                            raise
                        target = _readlink(fd, name)
                        if target is None:
                            raise fs_error(errno.ENOTDIR, shown) from None
                        return self._redirect(real, target, parts[index + 1 :], shown)
                    fd, parent = child, fd
                    os.close(parent)
                    real, virtual = join(real, name), join(virtual, name)
            location = Location(root, fd, None, virtual, real)
            fd = -1
            return location
        finally:
            if fd >= 0:
                os.close(fd)

    def _last(
        self,
        root: Root,
        fd: int,
        name: str,
        virtual: str,
        real: str,
        follow: bool,
        shown: str,
    ) -> Location | str:
        """The last name: a Location owning ``fd``, or (a link to follow) a new path."""
        location = Location(root, fd, name, join(virtual, name), join(real, name))
        try:
            if follow:
                found = location.entry()
                if found is not None and stat.S_ISLNK(found.st_mode):
                    target = _readlink(fd, name)
                    if target is not None:
                        location.close()
                        return self._redirect(real, target, [], shown)
        except BaseException:
            location.close()
            raise
        return location

    def _redirect(self, folder_real: str, target: str, rest: list[str], shown: str) -> str:
        """Where a link in ``folder_real`` leads, as a virtual path; refused if outside."""
        virtual = self.to_virtual(real_join(folder_real, target))
        if virtual is None:
            raise outside(shown)
        return join(virtual, *rest)

    def link_target(self, location: Location, shown: str) -> str:
        """The virtual path a link at ``location`` points to (EINVAL if it is not a link)."""
        if location.name is None:
            raise fs_error(errno.EINVAL, shown)
        with mapped(shown):
            target = _readlink(location.dir_fd, location.name)
        if target is None:
            raise fs_error(errno.EINVAL, shown, "not a symbolic link")
        return self._redirect(posixpath.dirname(location.real), target, [], shown)


def _readlink(fd: int, name: str) -> str | None:
    """The link's target, or None when ``name`` is not a link."""
    try:
        return os.readlink(name, dir_fd=fd)
    except OSError as error:
        if error.errno == errno.EINVAL:
            return None
        raise
