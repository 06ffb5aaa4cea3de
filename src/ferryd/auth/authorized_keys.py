"""Authorized SSH keys of an account: its own lines plus a file or a folder of files.

Files are read at each login so that a key dropped in by provisioning tooling works at
once; a private key found among them fails the login rather than being silently skipped.
"""

from __future__ import annotations

from pathlib import Path

import asyncssh

from ferryd.auth.account import Account

_PRIVATE_MARKERS = ("PRIVATE KEY-----",)


def _read(path: Path) -> list[str]:
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    lines: list[str] = []
    for file in files:
        text = file.read_text(encoding="utf-8", errors="replace")
        if any(marker in text for marker in _PRIVATE_MARKERS):
            raise ValueError(f"{file.name} holds a private key; only public keys belong there")
        lines.extend(text.splitlines())
    return lines


def read_authorized_keys(account: Account) -> asyncssh.SSHAuthorizedKeys | None:
    """The account's keys, or None when it has none; blocking, so callers use a thread."""
    lines = list(account.authorized_keys)
    path = account.authorized_keys_path
    if path is not None and path.exists():
        lines.extend(_read(path))
    text = "\n".join(line for line in lines if line.strip() and not line.lstrip().startswith("#"))
    if not text:
        return None
    return asyncssh.import_authorized_keys(text + "\n")
