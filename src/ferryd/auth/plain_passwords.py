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
from ferryd.ini.files import read_document, write_document


@dataclass(frozen=True, slots=True)
class HashedPassword:
    account_name: str
    path: str
    line: int


def hash_plain_passwords(configuration: Configuration) -> list[HashedPassword]:
    """Rewrite every plain-text account password as a hash; blocking (hashing, file I/O)."""
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
        document = read_document(path)
        for title, model, line in entries:
            document.set(title, "password", hash_password(model.password))
            changed.append(HashedPassword(model.name, str(Path(path)), line))
        write_document(path, document)
    return changed
