"""Stat results as SFTP attributes: what clients receive for stat, lstat, fstat, listings."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from asyncssh import SFTPAttrs

from ferryd.services.ssh.sftp import attributes


def _entries(folder: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, os.stat_result]:
    regular = folder / "report.csv"
    regular.write_bytes(b"x" * 1234)
    regular.chmod(0o640)
    os.utime(regular, ns=(1_700_000_000_123_456_789, 1_600_000_000_987_654_321))
    (folder / "inbox").mkdir(mode=0o750)
    (folder / "link").symlink_to("report.csv")
    os.mkfifo(folder / "fifo")
    monkeypatch.chdir(folder)  # a relative name: socket paths are limited to 108 bytes
    with socket.socket(socket.AF_UNIX) as unix:
        unix.bind("sock")
    return {path.name: path.lstat() for path in folder.iterdir()}


@pytest.mark.parametrize("name", ["report.csv", "inbox", "link", "fifo", "sock"])
def test_version_3_attributes_are_those_asyncssh_would_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Byte for byte what asyncssh's own conversion encodes for protocol version 3 (size,
    ids, type and permission bits, times), without its user and group name lookups."""
    found = _entries(tmp_path, monkeypatch)[name]
    assert attributes(found).encode(3) == SFTPAttrs.from_local(found).encode(3)


def test_a_file_keeps_its_size_mode_and_whole_second_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    converted = attributes(_entries(tmp_path, monkeypatch)["report.csv"])
    assert (converted.size, converted.permissions & 0o7777) == (1234, 0o640)
    assert (converted.atime, converted.mtime) == (1_700_000_000, 1_600_000_000)
    assert converted.owner is None and converted.group is None  # no system names looked up
