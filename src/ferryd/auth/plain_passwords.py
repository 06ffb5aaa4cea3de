"""Plain-text account passwords found in configuration files are replaced by their hash.

Administrators may type a password into ``server.ini`` by hand (SFTPPlus allows it); ferryd
accepts it once and stores the argon2id hash in place, touching only that option's line, so
the plain text does not stay on disk or travel to other nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ferryd.auth.passwords import hash_password, is_hash
from ferryd.config.configuration import Configuration
from ferryd.config.models import AccountModel
from ferryd.config.problems import ConfigurationError, Problem
from ferryd.ini import Document, IniError, edit_locked


@dataclass(frozen=True, slots=True)
class HashedPassword:
    account_name: str
    path: str
    line: int


def hash_plain_passwords(configuration: Configuration, advice: str = "") -> list[HashedPassword]:
    """Rewrite every plain-text account password as a hash; blocking (hashing, file I/O).

    Several nodes may load the same file at once, so each file is rewritten under its lock
    and a password is replaced only while the file still holds the plain text it was loaded
    with: one another node already hashed (or an administrator changed) is left alone and
    not reported. Hashes are computed before taking the lock, since hashing is slow.

    A file that cannot be rewritten (read-only mount) raises ConfigurationError at the
    password's line; ``advice`` ends the message (what else the administrator may change).
    """
    changed: list[HashedPassword] = []
    by_file: dict[str, list[tuple[str, AccountModel, int]]] = {}
    for section in configuration.of_kind("accounts"):
        model = section.model
        origin = section.options.get("password")
        plain = isinstance(model, AccountModel) and model.password and not is_hash(model.password)
        if plain and origin is not None:
            assert isinstance(model, AccountModel)
            by_file.setdefault(origin.path, []).append((section.title, model, origin.line))
    for path, entries in by_file.items():
        try:
            changed.extend(_store_hashes(path, entries))
        except (IniError, OSError) as error:
            title, _, line = entries[0]
            reason = getattr(error, "message", None) or getattr(error, "strerror", None) or error
            message = (
                f"cannot store the hash of the plain-text password ({reason}); make the file "
                f"writable by ferryd, or store a hash there instead{advice}"
            )
            raise ConfigurationError([Problem(path, line, message, title, "password")]) from None
    return changed


def _store_hashes(path: str, entries: list[tuple[str, AccountModel, int]]) -> list[HashedPassword]:
    """Hash the passwords of one file's ``(section, account, line)`` entries and store each
    one the file still holds as loaded; returns those stored. Raises IniError or OSError."""
    hashes = {title: hash_password(model.password) for title, model, _ in entries}
    stored: list[HashedPassword] = []

    def replace(document: Document) -> bool:
        for title, model, _ in entries:
            found = document.get(title, "password")
            if found is None or found.value != model.password:
                continue  # changed since loaded: hashed by another node, or edited
            document.set(title, "password", hashes[title])
            stored.append(HashedPassword(model.name, str(Path(path)), found.line))
        return bool(stored)

    edit_locked(path, replace)
    return stored
