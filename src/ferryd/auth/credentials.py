"""What a client presents at login, and what a method answers (reference 3.1).

Protocol services build :class:`Credentials`; methods answer with a :class:`Decision`:
accept (with the resolved account), reject (stop, with a reason), unknown (try the next), or
failed: the method could not decide (its server is unreachable, its answer is invalid), which
refuses the login as well, with an event saying the fault is not the client's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from ferryd.auth.account import Account
from ferryd.events.event import ComponentRef, Peer

CredentialType = Literal["password", "ssh-key"]


@dataclass(frozen=True, slots=True)
class Credentials:
    type: CredentialType
    username: str
    peer: Peer
    password: str = ""
    public_key: str = ""  # OpenSSH public key line ("ssh-ed25519 AAAA..."), for ssh-key
    service: ComponentRef | None = None  # the service the client logs in to

    def __repr__(self) -> str:  # never let a password reach a log through repr()
        return f"Credentials({self.type!r}, {self.username!r}, {self.peer.address!r})"


class Outcome(enum.Enum):
    ACCEPT = "accept"
    REJECT = "reject"
    UNKNOWN = "unknown"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reason: str = ""
    account: Account | None = None
    # A refusal event other than the default 20142: 20136 (name denied), 20005 (address banned).
    event_id: str = ""
