"""The temporary work folder: client key, source data (made once, on first use) and scratch."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from harness.server import run_checked

MIB = 1024 * 1024
GIB = 1024 * MIB


def size_label(size: int) -> str:
    """'1 GiB', '20 MiB' or '4 KiB' for a power-of-two-ish size."""
    for unit, name in ((GIB, "GiB"), (MIB, "MiB"), (1024, "KiB")):
        if size >= unit:
            return f"{size / unit:g} {name}"
    return f"{size} B"


def write_random_file(path: Path, size: int) -> None:
    """Incompressible content, in chunks so a 1 GiB file never sits in memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as stream:
        remaining = size
        while remaining:
            chunk = min(remaining, 4 * MIB)
            stream.write(os.urandom(chunk))
            remaining -= chunk


@dataclass
class Workspace:
    """Keys and source files shared by both servers; data files are created when first needed."""

    root: Path
    key: Path = field(init=False)
    scratch: Path = field(init=False)
    _made: set[str] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        self.key = self.root / "client_ed25519"
        self.scratch = self.root / "scratch"
        self.scratch.mkdir(parents=True, exist_ok=True)
        run_checked(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", self.key])

    @property
    def public_key(self) -> str:
        """The one-line OpenSSH public key every server must accept."""
        return self.key.with_suffix(".pub").read_text().strip()

    def random_file(self, name: str, size: int) -> Path:
        """A source file of ``size`` random bytes, made once."""
        path = self.root / "source" / f"{name}-{size}.bin"
        if path.name not in self._made:
            write_random_file(path, size)
            self._made.add(path.name)
        return path

    def small_files(self, count: int, size: int) -> Path:
        """A folder of ``count`` random files of ``size`` bytes, made once."""
        folder = self.root / "source" / f"many-{count}x{size}"
        if folder.name not in self._made:
            folder.mkdir(parents=True)
            for index in range(count):
                (folder / f"file-{index:05d}.bin").write_bytes(os.urandom(size))
            self._made.add(folder.name)
        return folder


def link_tree(source: Path, destination: Path) -> None:
    """Hard-link a file or a folder's files into a server's folder, so every server reads the
    same inodes (and page cache) when clients download them."""
    if destination.exists():
        return
    destination.parent.mkdir(parents=True, exist_ok=True)
    if source.is_file():
        os.link(source, destination)
    else:
        shutil.copytree(source, destination, copy_function=os.link)


def remove(path: Path) -> None:
    """Delete a file or folder if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def tree_size(path: Path) -> tuple[int, int]:
    """(file count, total bytes) of a file or folder; (0, 0) when it is missing."""
    if path.is_file():
        return 1, path.stat().st_size
    if not path.is_dir():
        return 0, 0
    files = [item for item in path.rglob("*") if item.is_file()]
    return len(files), sum(item.stat().st_size for item in files)
