"""Errors of the account filesystem: an errno for the protocol layer, a virtual path for people.

Every protocol turns the errno into its own status code, and shows the message to the client or
writes it to an event; messages therefore name the virtual path the client used and never the
real one, so nobody learns where a home folder lives on the server.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager


class FsError(OSError):
    """An ``OSError`` whose message is safe to show to the client (virtual paths only)."""


def fs_error(code: int, virtual: str, reason: str | None = None) -> FsError:
    """An error about ``virtual``; the reason defaults to the C library's text for the errno."""
    text = reason if reason is not None else os.strerror(code)
    return FsError(code, f"{text[:1].lower()}{text[1:]}: {virtual}")


def denied(verb: str, virtual: str) -> FsError:
    """The account's permissions do not grant ``verb`` at ``virtual``."""
    return FsError(errno.EACCES, f"permission denied: {verb} {virtual}")


def not_found(virtual: str) -> FsError:
    return FsError(errno.ENOENT, f"no such file or folder: {virtual}")


def outside(virtual: str) -> FsError:
    """A symbolic link leads out of every root of the jail."""
    return FsError(errno.EACCES, f"points outside the home folder: {virtual}")


def protected(virtual: str) -> FsError:
    """The home folder, a virtual folder or a parent of one cannot be changed."""
    return FsError(errno.EACCES, f"home and virtual folders cannot be changed: {virtual}")


def over_limit(limit: int, virtual: str) -> FsError:
    """The account's ``file_write_size`` would be exceeded."""
    return FsError(errno.EDQUOT, f"file_write_size limit of {limit} bytes reached: {virtual}")


@contextmanager
def mapped(virtual: str) -> Iterator[None]:
    """Re-raise a plain ``OSError`` (whose filename may be a real path) as an ``FsError``."""
    try:
        yield
    except FsError:
        raise
    except OSError as error:
        raise fs_error(error.errno or errno.EIO, virtual) from None
