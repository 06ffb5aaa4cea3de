"""Remove the upload temporaries a previous run of this node left behind.

Only this node's names made by an earlier run are touched: this run's belong to uploads in
flight (services start while others already serve), and on a store shared by several nodes
the other nodes have uploads in flight too.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from ferryd.fs.names import INSTANCE, temp_pattern


def sweep_stale_uploads(roots: Iterable[Path], node_name: str) -> list[Path]:
    """Delete ``.ferryd-upload.<node_name>.*`` files of earlier runs under ``roots`` (missing
    roots are skipped); links are not followed.

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
            found_name = pattern.match(name)
            if found_name is None or found_name.group("instance") == INSTANCE:
                continue
            try:
                found = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if stat.S_ISREG(found.st_mode):
                    os.unlink(name, dir_fd=dir_fd)
                    removed.append(Path(folder, name))
            except OSError:
                continue
    return removed
