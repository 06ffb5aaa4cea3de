"""One timed sftp transfer of the big file, with the server's CPU time spent on it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from harness.proc import tree_cpu_seconds, wait_for_no_children
from harness.server import Server
from harness.sftp import quote, run_batch, write_batch
from harness.workspace import GIB, Workspace, link_tree, remove, size_label, tree_size

KIB = 1024


@dataclass(frozen=True)
class Transfer:
    """A single-file upload or download with one cipher and request size (None: default)."""

    direction: str  # "upload" or "download"
    size: int
    cipher: str
    request_size: int | None = None

    @property
    def label(self) -> str:
        """e.g. 'upload 1 GiB, aes128-gcm, 32 KiB requests'."""
        requests = (
            "default requests"
            if self.request_size is None
            else f"{self.request_size // KIB} KiB requests"
        )
        cipher = self.cipher.split("@")[0]
        return f"{self.direction} {size_label(self.size)}, {cipher}, {requests}"


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of the sftp session and the server's CPU seconds during it."""

    seconds: float
    cpu_seconds: float

    def mb_per_s(self, size: int) -> float:
        """Payload MB (10^6 bytes) per second."""
        return size / 1e6 / self.seconds

    def cpu_per_gib(self, size: int) -> float:
        """Server CPU seconds per GiB moved."""
        return self.cpu_seconds / (size / GIB)


def timed_batch(
    server: Server, workspace: Workspace, batch: Path, cipher: str, request_size: int | None
) -> Timing:
    """Run an sftp batch; the server's CPU is read once its session processes are gone."""
    wait_for_no_children(server.pid)
    cpu_before = tree_cpu_seconds(server.pid)
    seconds = run_batch(server, workspace.key, batch, cipher, request_size)
    wait_for_no_children(server.pid)
    return Timing(seconds, tree_cpu_seconds(server.pid) - cpu_before)


def run_transfer(
    transfer: Transfer, server: Server, workspace: Workspace, check: bool = False
) -> Timing:
    """Run one transfer; ``check`` verifies the bytes arrived. Leaves nothing behind."""
    source = workspace.random_file("big", transfer.size)
    upload_path = server.local_root / "upload.bin"
    download_path = workspace.scratch / "download.bin"
    batch = workspace.root / "batch.txt"
    if transfer.direction == "upload":
        write_batch(batch, f"put {quote(source)} {quote(server.remote('upload.bin'))}")
        arrived = upload_path
    else:
        link_tree(source, server.local_root / "download.bin")
        write_batch(batch, f"get {quote(server.remote('download.bin'))} {quote(download_path)}")
        arrived = download_path
    timing = timed_batch(server, workspace, batch, transfer.cipher, transfer.request_size)
    try:
        if check and tree_size(arrived) != (1, transfer.size):
            raise RuntimeError(
                f"{transfer.label} on {server.name}: expected 1 file of {transfer.size} bytes,"
                f" found (files, bytes) {tree_size(arrived)}"
            )
    finally:
        remove(arrived)
        os.sync()  # so writeback of this upload does not slow the next timing
    return timing
