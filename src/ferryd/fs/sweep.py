"""Remove the upload temporaries a previous run of this node left behind.

Called at service start, before any session: a temporary of this node cannot belong to a live
upload then. Only this node's names are touched, because on a store shared by several nodes
the others have uploads in flight.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from ferryd.fs.names import temp_pattern


def sweep_stale_uploads(roots: Iterable[Path], node_name: str) -> list[Path]:
    """Delete ``.ferryd-upload.<node_name>.*`` files under ``roots``; links are not followed.

    The roots themselves are configured paths and may be links; below them the walk holds
    folder descriptors (``os.fwalk``) so a folder swapped for a link is not descended into.
    Unreadable folders are skipped: a sweep must never stop the service from starting.
    """
    pattern = temp_pattern(node_name)
    removed: list[Path] = []
    seen: set[str] = set()
    for root in roots:
        top = os.path.realpath(root)
        if top in seen:
            continue
        seen.add(top)
        try:
            removed.extend(_sweep(top, pattern))
        except OSError:
            continue
    return removed


def _sweep(top: str, pattern: re.Pattern[str]) -> list[Path]:
    removed: list[Path] = []
    for folder, _, files, dir_fd in os.fwalk(top, follow_symlinks=False):
        for name in files:
            if not pattern.match(name):
                continue
            try:
                found = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if stat.S_ISREG(found.st_mode):
                    os.unlink(name, dir_fd=dir_fd)
                    removed.append(Path(folder, name))
            except OSError:
                continue
    return removed
