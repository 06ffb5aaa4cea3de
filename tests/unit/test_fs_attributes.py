"""Attribute changes refuse up front what only the owner may do, so a refusal changes nothing.

The case that matters is a group-writable file owned by someone else (a shared folder): the
server may truncate it, but not chmod it or set its times. The server here runs as root,
which may do both, so the check runs in a child process that has become ``nobody``.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from ferryd.fs.attributes import apply_in_order
from ferryd.fs.errors import FsError

NOBODY = 65534


def _in_child_as_nobody(path: Path, mode: int | None, times: tuple[int, int] | None) -> int:
    """The child's exit status: 0 refused with EPERM, 1 not refused, 2 another error. The
    file is opened for writing before the fork, as a session holds an open upload."""
    fd = os.open(path, os.O_WRONLY)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        status = 2
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            apply_in_order(fd, "/shared.txt", os.fstat(fd), size=0, mode=mode, times=times)
            status = 1
        except FsError as error:
            status = 0 if error.errno == errno.EPERM else 2
        finally:
            os._exit(status)
    os.close(fd)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another user needs root")
@pytest.mark.parametrize(("mode", "times"), [(0o600, None), (None, (0, 0))], ids=["chmod", "utime"])
def test_a_refused_mode_or_time_change_does_not_truncate_a_file_of_another_owner(
    tmp_path: Path, mode: int | None, times: tuple[int, int] | None
) -> None:
    shared = tmp_path / "shared.txt"
    shared.write_bytes(b"the partner's file\n")
    shared.chmod(0o666)  # writable by all, owned by root

    assert _in_child_as_nobody(shared, mode, times) == 0
    assert shared.read_bytes() == b"the partner's file\n"
    assert shared.stat().st_mode & 0o777 == 0o666
