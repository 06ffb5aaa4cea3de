"""Authorized SSH keys of an account: its own lines plus a file or a folder of files.

Files are read at each login so that a key dropped in by provisioning tooling works at
once. A line that is not a usable key is skipped, as OpenSSH does, so one bad line does not
lock out every other key; a refused login names each skipped line (file and line number)
so the administrator sees why. A private key found among them fails the login rather than
being skipped: it is a secret in the wrong place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from ferryd.auth.account import Account

_PRIVATE_MARKERS = ("PRIVATE KEY-----",)
_CONTENT = "ssh_authorized_keys_content"


@dataclass(frozen=True)
class AuthorizedKeys:
    """One parsed entry per usable line, and the lines that were skipped and why."""

    entries: tuple[asyncssh.SSHAuthorizedKeys, ...]
    skipped: tuple[str, ...]

    def allow(self, key: asyncssh.SSHKey, address: str) -> bool:
        """Whether a line lists ``key`` and its options (``from=``...) admit ``address``."""
        return any(entry.validate(key, "", address) is not None for entry in self.entries)


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]


def _sources(account: Account) -> Iterable[tuple[str, list[str]]]:
    yield _CONTENT, list(account.authorized_keys)
    path = account.authorized_keys_path
    if path is None or not path.exists():
        return
    for file in _files(path):
        text = file.read_text(encoding="utf-8", errors="replace")
        if any(marker in text for marker in _PRIVATE_MARKERS):
            raise ValueError(f"{file} holds a private key; only public keys belong there")
        yield str(file), text.splitlines()


def read_authorized_keys(account: Account) -> AuthorizedKeys:
    """The account's keys; blocking (files are read), so callers use a thread."""
    entries: list[asyncssh.SSHAuthorizedKeys] = []
    skipped: list[str] = []
    for source, lines in _sources(account):
        for number, line in enumerate(lines, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            try:
                entries.append(asyncssh.import_authorized_keys(text))
            except ValueError as error:
                # asyncssh says "No valid entries found" for a line it cannot read at all.
                reason = str(error)
                if reason == "No valid entries found":
                    reason = "not a public key"
                skipped.append(f"{source} line {number}: {reason}")
    return AuthorizedKeys(tuple(entries), tuple(skipped))
