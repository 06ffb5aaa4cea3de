"""Virtual path names: normalisation that cannot climb above ``/``, and upload temporary names.

Every path a client sends goes through ``normalize`` first, so the rest of the filesystem only
ever sees absolute paths made of plain names: no ``.``, no ``..``, no empty component, no NUL.
"""

from __future__ import annotations

import errno
import os
import re
import secrets

from ferryd.fs.errors import FsError

MAX_NAME = 255
MAX_PATH = 4096
TEMP_PREFIX = ".ferryd-upload."
_NODE_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def _encoded(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise FsError(errno.EILSEQ, "file name is not valid UTF-8") from None


def normalize(path: str | bytes, cwd: str = "/") -> str:
    """The absolute virtual path of ``path`` seen from ``cwd``; ``..`` stops at ``/`` (chroot)."""
    if isinstance(path, bytes):
        try:
            path = path.decode("utf-8")
        except UnicodeDecodeError:
            raise FsError(errno.EILSEQ, "file name is not valid UTF-8") from None
    if "\x00" in path or "\x00" in cwd:
        raise FsError(errno.EINVAL, "file name contains a NUL character")
    if len(_encoded(path)) > MAX_PATH:
        raise FsError(errno.ENAMETOOLONG, "file name too long")
    combined = path if path.startswith("/") else f"{cwd}/{path}"
    parts: list[str] = []
    for part in combined.split("/"):
        if part in ("", "."):
            continue
        if len(_encoded(part)) > MAX_NAME:
            raise FsError(errno.ENAMETOOLONG, "file name too long")
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    result = "/" + "/".join(parts)
    if len(_encoded(result)) > MAX_PATH:
        raise FsError(errno.ENAMETOOLONG, "file name too long")
    return result


def split(virtual: str) -> tuple[str, str]:
    """Parent folder and last name of a normalised path (``("/", "")`` for ``/``)."""
    parent, _, name = virtual.rpartition("/")
    return parent or "/", name


def join(folder: str, *names: str) -> str:
    """Append plain names to a normalised absolute path."""
    if not names:
        return folder
    return folder.rstrip("/") + "/" + "/".join(names)


def is_within(path: str, folder: str) -> bool:
    """True when ``path`` is ``folder`` or below it (both normalised, absolute)."""
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def is_temp(name: str) -> bool:
    """Upload temporary files are invisible and untouchable through every protocol."""
    return name.startswith(TEMP_PREFIX)


def node_tag(node_name: str) -> str:
    """The node name as written in temporary names: no dot, so one node never matches another."""
    return _NODE_UNSAFE.sub("_", node_name)[:64] or "node"


# This process's mark in its temporary names: the pid alone repeats across restarts (a
# container's ferryd is often pid 1 every time), so a random part tells runs apart.
INSTANCE = f"{os.getpid()}-{secrets.token_hex(4)}"


def temp_name(node_name: str, final: str) -> str:
    """``.ferryd-upload.<node>.<pid>-<run>.<16 hex>.<final name>``, cut to fit in 255 bytes."""
    head = f"{TEMP_PREFIX}{node_tag(node_name)}.{INSTANCE}.{secrets.token_hex(8)}."
    room = MAX_NAME - len(head.encode("utf-8"))
    tail = final.encode("utf-8")[: max(room, 0)].decode("utf-8", "ignore")
    return head + tail


def temp_pattern(node_name: str) -> re.Pattern[str]:
    """Matches the temporary names of ``node_name`` only; group ``instance`` is the run that
    made it (the pid, run and random parts are strict)."""
    return re.compile(
        rf"^{re.escape(TEMP_PREFIX + node_tag(node_name))}\."
        rf"(?P<instance>\d+-[0-9a-f]{{8}})\.[0-9a-f]{{16}}\."
    )
