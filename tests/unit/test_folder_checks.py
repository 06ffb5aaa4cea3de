"""Readiness folder checks when storage hangs (an NFS server gone): the probe answers
within its deadline, and later probes do not pile more stuck threads on top.

A hung filesystem cannot be staged here, so the check of one folder is made to block."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from ferryd.health import readiness
from ferryd.health.readiness import FOLDER_DEADLINE, Check, FolderChecks


async def test_a_hung_folder_is_reported_within_the_deadline_and_checked_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    calls: list[Path] = []
    real = readiness._check_folder

    def hanging(folder: Path) -> Check:
        calls.append(folder)
        if folder.name == "nfs":
            release.wait(30)
        return real(folder)

    monkeypatch.setattr(readiness, "_check_folder", hanging)
    (tmp_path / "nfs").mkdir()
    checks = FolderChecks()
    try:
        started = time.monotonic()
        first = await checks.run([tmp_path / "nfs"])
        assert time.monotonic() - started < FOLDER_DEADLINE + 1
        assert [(c.ok, c.detail) for c in first] == [(False, "storage did not answer for 2 s")]

        second = await checks.run([tmp_path / "nfs"])  # the next probe: still stuck
        assert second[0].detail.startswith("storage did not answer for ")
        assert calls == [tmp_path / "nfs"], "no second check was started behind the stuck one"

        release.set()  # the server is back
        await asyncio.sleep(0.1)
        third = await checks.run([tmp_path / "nfs"])
        assert [(c.ok, c.detail) for c in third] == [(True, "writable")]
    finally:
        release.set()
        checks.close()
