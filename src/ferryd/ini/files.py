"""Reading and atomically replacing configuration files.

The configuration holds secrets and is the only record of the server's
setup, so a write must never leave a half-written file, loosen permissions,
or change the owner; failures are reported with the file name.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile

from ferryd.ini.document import Document
from ferryd.ini.errors import IniFileError, IniSyntaxError

_NEW_FILE_MODE = 0o600  # configuration may hold passwords: private unless told otherwise


def os_reason(exc: OSError) -> str:
    """The system's words for an error, without Python's ``[Errno N]`` and path."""
    return exc.strerror or str(exc)


def write_target(name: str) -> str:
    """The file a write of ``name`` really replaces: a symbolic link is written through, so
    the link stays and every path to one file is one file to writers and to their lock."""
    return os.path.realpath(name) if os.path.islink(name) else name


def read_document(path: str | os.PathLike[str]) -> Document:
    """Read and parse a UTF-8 file, keeping its line endings and BOM intact."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as stream:
            data = stream.read()
    except OSError as exc:
        raise IniFileError(name, f"cannot read: {os_reason(exc)}") from exc
    return parse_bytes(name, data)


def parse_bytes(name: str, data: bytes) -> Document:
    """Parse a file's bytes already read; ``name`` is what errors report."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise IniSyntaxError(name, line, f"not valid UTF-8 at byte {exc.start}") from exc
    return Document.parse(text, name)


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Replace the file with ``text`` so readers see either the old or the new content.

    The new file keeps the old file's mode and, where permitted, its owner.
    A symbolic link is written through, so the link itself is preserved.
    """
    name = os.fspath(path)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise IniFileError(name, f"cannot encode as UTF-8: {exc.reason}") from exc
    target = write_target(name)
    folder = os.path.dirname(target) or "."
    try:
        old: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        old = None
    except OSError as exc:
        raise IniFileError(name, f"cannot write: {os_reason(exc)}") from exc

    temp: str | None = None
    try:
        fd, temp = tempfile.mkstemp(
            prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=folder
        )
        with os.fdopen(fd, "wb") as stream:
            os.fchmod(stream.fileno(), stat.S_IMODE(old.st_mode) if old else _NEW_FILE_MODE)
            if old is not None:
                with contextlib.suppress(PermissionError):
                    os.fchown(stream.fileno(), old.st_uid, old.st_gid)
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, target)
        temp = None
    except OSError as exc:
        raise IniFileError(name, f"cannot write: {os_reason(exc)}") from exc
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
    _sync_directory(folder)


def _sync_directory(folder: str) -> None:
    """Make the rename durable.

    Errors are ignored: the new content is already in place, and some
    file systems cannot sync a directory at all.
    """
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_document(path: str | os.PathLike[str], doc: Document) -> None:
    """Atomically write the document's exact text."""
    write_atomic(path, doc.render())
