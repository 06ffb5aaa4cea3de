"""The authentication chain (reference 3.1): methods in order until one accepts or rejects.

A disabled method is skipped; a method that should run but is not running (it failed to
start) aborts the login, because skipping it could let a less strict method decide.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ferryd.auth.credentials import Credentials, Decision, Outcome
from ferryd.config.configuration import Configuration
from ferryd.config.models import ComponentModel
from ferryd.events.event import ComponentRef
from ferryd.lifecycle import Component


@dataclass(frozen=True, slots=True)
class ChainResult:
    decision: Decision
    method: ComponentRef | None = None


async def authenticate(
    method_uuids: Sequence[str],
    configuration: Configuration,
    find: Callable[[tuple[str, str]], Component[Any] | None],
    credentials: Credentials,
) -> ChainResult:
    for uuid in method_uuids:
        section = configuration.sections.get(("authentications", uuid))
        model = section.model if section else None
        if isinstance(model, ComponentModel) and not model.enabled:
            continue
        method = find(("authentications", uuid))
        if method is None or not hasattr(method, "authenticate"):
            reason = f"authentication method {uuid!r} is not running"
            return ChainResult(Decision(Outcome.REJECT, reason))
        decision: Decision = await method.authenticate(credentials)
        if decision.outcome is Outcome.UNKNOWN:
            continue
        return ChainResult(decision, method.ref)
    return ChainResult(Decision(Outcome.UNKNOWN, "no method knows the account"))
