"""What a server costs, read from /proc: CPU time and proportional memory of a process tree.

A server is a tree of processes: ferryd is one process, OpenSSH's ``sshd -D`` listener forks a
``sshd`` per connection, which forks the logged-in ``sshd`` and that one ``sftp-server``.
CPU time of processes that already exited is not lost: Linux adds a child's time (and its
reaped children's) to its parent's ``cutime``/``cstime`` when the parent reaps it, so the
root's own and reaped time plus the time of the still-running descendants covers the tree.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (field 3, state, comes first)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def children_map() -> dict[int, list[int]]:
    """Parent pid -> child pids, for every process visible now (zombies included)."""
    tree: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def descendants(root: int) -> list[int]:
    """Every process below ``root``, children before grandchildren."""
    tree = children_map()
    found: list[int] = []
    queue = list(tree.get(root, []))
    while queue:
        pid = queue.pop(0)
        found.append(pid)
        queue.extend(tree.get(pid, []))
    return found


def _is_worker_pool(pid: int) -> bool:
    """ferryd's password-hashing pool (Python multiprocessing): it lives as long as ferryd,
    and its CPU time is counted while it runs, like any live descendant's."""
    try:
        return b"multiprocessing" in (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False


def wait_for_no_children(root: int, timeout: float = 10.0) -> None:
    """Wait until the server has reaped every session process, so their CPU time is counted."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(_is_worker_pool(pid) for pid in descendants(root)):
            return
        time.sleep(0.01)


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of ``root``, its reaped children and its live descendants."""
    total = 0
    for pid in (root, *descendants(root)):
        fields = _stat_fields(pid)
        if fields is not None:
            # utime, stime, cutime, cstime: fields 14-17 of stat, 12-15 after the name.
            # A process's time moves to its parent's cutime/cstime when it is reaped, at
            # which point it leaves the tree, so nothing is counted twice.
            total += sum(int(value) for value in fields[11:15])
    return total / TICKS


def pss_kib(pid: int) -> int:
    """Proportional set size of one process in KiB (0 if it is gone or is a zombie)."""
    try:
        text = (PROC / str(pid) / "smaps_rollup").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def tree_pss_kib(root: int) -> int:
    """Total PSS of a server's processes: the shared pages are split, not counted twice."""
    return sum(pss_kib(pid) for pid in (root, *descendants(root)))
