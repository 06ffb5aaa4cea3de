"""Several writers, one configuration file: an exclusive lock and compare-before-write.

Nodes sharing a configuration folder (possibly over a network filesystem) and local tools may
all rewrite the same file. An atomic rename alone keeps the file whole but lets one writer
silently undo another's change (lost update). So every writer takes ``.NAME.lock`` beside the
file (``flock``: works across processes and threads, and over NFS). Two ways to write:
:func:`edit_locked` reads, changes and writes under the lock (ferryd's own writer, the
hashing of plain-text passwords, decides from what it reads there); :func:`save_if_unchanged`
is for an edit computed earlier from :func:`read_versioned` (an editor showing the file to a
person), and is refused with :class:`StaleWriteError` if the file changed since, instead of
overwriting or merging.

A file's *version* is the SHA-256 hex digest of its bytes (None when it does not exist): it
changes with any edit, whoever made it and however it was saved, unlike a size or mtime.

The lock is advisory: an administrator's editor does not take it, which is why saves compare
versions instead of trusting the lock alone. Everything here blocks; run it in a thread.
The lock is not re-entrant: do not take it again while holding it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ferryd.ini.document import Document
from ferryd.ini.errors import IniFileError
from ferryd.ini.files import os_reason, parse_bytes, write_atomic, write_target

DEFAULT_LOCK_TIMEOUT = 10.0  # seconds; a save is a few milliseconds, so this means "stuck"
_LOCK_FILE_MODE = 0o600  # never loosened: the lock sits among files holding secrets
_RETRY_MIN = 0.005  # seconds between attempts; random within this range, so that
_RETRY_MAX = 0.02  # waiting writers do not retry in lockstep


class LockTimeoutError(IniFileError):
    """Another writer held the file's lock for longer than the caller was willing to wait."""

    def __init__(self, path: str, lock: str, timeout: float) -> None:
        super().__init__(
            path,
            f"another writer holds the lock {os.path.basename(lock)} (waited {timeout:g} s); "
            "try again once it has finished",
        )
        self.args = (path, lock, timeout)  # so the error pickles (crosses processes)
        self.lock = lock
        self.timeout = timeout


class StaleWriteError(IniFileError):
    """The file changed after the caller read it: saving would undo someone else's change."""

    def __init__(self, path: str, based_on: str | None, found: str | None) -> None:
        if found is None:
            what = "was removed since it was read"
        elif based_on is None:
            what = "was created since it was found missing"
        else:
            what = "changed on disk since it was read"
        super().__init__(
            path,
            f"{what} (another node or an administrator saved it); "
            "read it again and redo the change",
        )
        self.args = (path, based_on, found)
        self.based_on = based_on
        self.found = found


def version_of(data: bytes) -> str:
    """The version of a file holding ``data``."""
    return hashlib.sha256(data).hexdigest()


def lock_path(path: str | os.PathLike[str]) -> str:
    """``.NAME.lock`` beside the file (beside its target for a symbolic link)."""
    folder, base = os.path.split(write_target(os.fspath(path)))
    return os.path.join(folder, f".{base}.lock")


def _open_lock(path: str, lock: str) -> int:
    """Open the lock file, creating it private if missing; it is never deleted, since a
    writer waiting on a deleted lock file would exclude no one."""
    flags = os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL | flags, _LOCK_FILE_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise IniFileError(path, f"cannot create the lock {lock}: {os_reason(exc)}") from exc
    else:
        os.fchmod(fd, _LOCK_FILE_MODE)  # whatever the umask
        return fd
    try:
        return os.open(lock, os.O_RDWR | flags)
    except PermissionError:
        pass  # a read-only lock file still locks (flock needs no write access)
    except OSError as exc:
        raise IniFileError(path, f"cannot open the lock {lock}: {os_reason(exc)}") from exc
    try:
        return os.open(lock, os.O_RDONLY | flags)
    except OSError as exc:
        raise IniFileError(path, f"cannot open the lock {lock}: {os_reason(exc)}") from exc


@contextmanager
def locked(
    path: str | os.PathLike[str], *, timeout: float = DEFAULT_LOCK_TIMEOUT
) -> Iterator[None]:
    """Hold the file's exclusive lock for the ``with`` block.

    Polls a non-blocking ``flock`` so a stuck writer costs ``timeout`` seconds and a
    LockTimeoutError naming the file, never a hang. Each call opens its own descriptor, so
    threads of one process exclude each other too.
    """
    name = os.fspath(path)
    lock = lock_path(name)
    fd = _open_lock(name, lock)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LockTimeoutError(name, lock, timeout) from None
                time.sleep(min(left, random.uniform(_RETRY_MIN, _RETRY_MAX)))
            except OSError as exc:
                raise IniFileError(name, f"cannot lock {lock}: {os_reason(exc)}") from exc
        yield
    finally:
        os.close(fd)  # releases the lock


def _read_bytes(name: str) -> bytes | None:
    try:
        with open(name, "rb") as stream:
            return stream.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IniFileError(name, f"cannot read: {os_reason(exc)}") from exc


def current_version(path: str | os.PathLike[str]) -> str | None:
    """The version of the file now on disk; None when it does not exist."""
    data = _read_bytes(os.fspath(path))
    return None if data is None else version_of(data)


def read_versioned(path: str | os.PathLike[str]) -> tuple[Document, str]:
    """Read and parse the file, with the version of exactly the bytes parsed.

    Pass the version to save_if_unchanged when saving an edit of this document. No lock is
    needed: writes replace the file by rename, so a read sees one whole version.
    """
    name = os.fspath(path)
    data = _read_bytes(name)
    if data is None:
        raise IniFileError(name, "cannot read: No such file or directory")
    return parse_bytes(name, data), version_of(data)


def save_if_unchanged(
    path: str | os.PathLike[str],
    text: str,
    based_on: str | None,
    *,
    timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> str:
    """Atomically replace the file with ``text`` if it is still at version ``based_on``.

    ``based_on`` is the version the change was computed from (None: the file must not exist).
    Raises StaleWriteError, leaving the file untouched, when it differs: merging could
    combine two edits into something nobody wrote. Returns the new version.
    """
    name = os.fspath(path)
    with locked(name, timeout=timeout):
        data = _read_bytes(name)
        found = None if data is None else version_of(data)
        if found != based_on:
            raise StaleWriteError(name, based_on, found)
        write_atomic(name, text)
    return version_of(text.encode("utf-8"))


def edit_locked(
    path: str | os.PathLike[str],
    change: Callable[[Document], bool],
    *,
    timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> str:
    """Read, change and write the file under its lock, so no other writer interleaves.

    ``change`` edits the document in place and returns whether to save it; it should be quick
    (it runs while other writers wait) and may be called on content newer than the caller
    last saw, so it should decide from the document it is given. Returns the file's version
    afterwards (unchanged when ``change`` returned False).
    """
    name = os.fspath(path)
    with locked(name, timeout=timeout):
        data = _read_bytes(name)
        if data is None:
            raise IniFileError(name, "cannot read: No such file or directory")
        document = parse_bytes(name, data)
        if not change(document):
            return version_of(data)
        text = document.render()
        write_atomic(name, text)
    return version_of(text.encode("utf-8"))
