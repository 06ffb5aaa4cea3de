"""The event object handed to every handler.

Its shape follows SFTPPlus's event object (id, uuid, message, timestamp, account with peer,
component, server, data) so that templates and downstream SIEM rules written for SFTPPlus
keep working.
"""

from __future__ import annotations

import time
import uuid as uuid_module
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ferryd.events.catalogue import EventDefinition


@dataclass(frozen=True, slots=True)
class Peer:
    address: str
    port: int
    family: str = "IPv4"
    protocol: str = "TCP"


@dataclass(frozen=True, slots=True)
class AccountRef:
    name: str
    uuid: str = ""
    email: str = ""
    peer: Peer | None = None


@dataclass(frozen=True, slots=True)
class ComponentRef:
    uuid: str
    type: str
    name: str
    kind: str = ""


@dataclass(frozen=True, slots=True)
class ServerRef:
    uuid: str
    name: str
    node: str


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    groups: frozenset[str]
    message: str
    server: ServerRef
    data: Mapping[str, Any]
    component: ComponentRef | None = None
    account: AccountRef | None = None
    timestamp: float = field(default_factory=time.time)
    uuid: str = field(default_factory=lambda: uuid_module.uuid4().hex)

    @property
    def username(self) -> str | None:
        return self.account.name if self.account else None

    @property
    def peer_address(self) -> str | None:
        if self.account is None or self.account.peer is None:
            return None
        return self.account.peer.address


# C0 controls and DEL, written as \xNN: a file name sent by a client must never be able to
# start a new, forged line in an audit log (or hide text with terminal escapes).
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F]}


def one_line(text: str) -> str:
    """``text`` with control characters escaped, so that one event stays one line."""
    # Printable text has none of them; the check is C, the translation a lookup per character.
    return text if text.isprintable() else text.translate(_CONTROLS)


def render_message(definition: EventDefinition, data: Mapping[str, Any]) -> str:
    """Fill the ``%(name)s`` template; a missing field shows as ``-`` rather than failing."""
    return definition.template % _Lenient(data)


class _Lenient(dict[str, Any]):
    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        return one_line(value) if isinstance(value, str) else value

    def __missing__(self, key: str) -> str:
        return "-"
