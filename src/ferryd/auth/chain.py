"""The authentication chain (reference 3.1), the same for every protocol and credential type.

Order: the service's security policy (address filter, bans, denied names), then each method
in turn until one accepts or rejects; "unknown" passes to the next. A disabled method, or one
placed on other nodes, is skipped (event 20111); one that should run here but is not running,
or that cannot decide (its server is down), refuses the login (event 20256), because skipping
it could let a less strict method decide. Every outcome is one event, emitted here, so every
protocol reports logins the same way; the success event (20137) is the service's, sent once
the session is ready.

Failed password logins count toward the policy's ban and are answered no sooner than
``failed_login_delay`` after they began, whichever step refused them, so timing does not tell
an unknown name from a wrong password; the wait is a sleep, so nobody else is held up. Key
offers are not counted or delayed: clients offer several keys and a refused offer is not a guess.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ferryd.auth.credentials import Credentials, Decision, Outcome
from ferryd.auth.policy import (
    ActivePolicy,
    Emit,
    Refusal,
    Screen,
    SecurityGuard,
    active_policy,
)
from ferryd.config.configuration import Configuration
from ferryd.config.models import ComponentModel, ServiceModel
from ferryd.events.event import AccountRef, ComponentRef, Peer
from ferryd.lifecycle import Component

Finder = Callable[[tuple[str, str]], Component[Any] | None]


@dataclass(frozen=True, slots=True)
class ChainResult:
    decision: Decision
    method: ComponentRef | None = None


@dataclass(frozen=True, slots=True)
class LoginScope:
    """What a service hands the chain for one login attempt."""

    configuration: Configuration
    methods: Sequence[str]
    policy: ActivePolicy | None
    find: Finder
    guard: SecurityGuard | None
    emit: Emit  # the service's emit: events carry the service as their component


def _method_ref(uuid: str, model: ComponentModel | None) -> ComponentRef:
    return ComponentRef(
        uuid=uuid,
        type=model.type if model else "-",
        name=(model.name or uuid) if model else uuid,
        kind="authentications",
    )


async def authenticate(scope: LoginScope, credentials: Credentials) -> ChainResult:
    started = time.monotonic()
    account = AccountRef(name=credentials.username, peer=credentials.peer)
    screen: Screen | Refusal = Screen.CHECK
    if scope.policy is not None and scope.guard is not None:
        screen = scope.policy.screen_login(
            scope.guard, credentials.peer.address, credentials.username
        )
    if isinstance(screen, Refusal):
        assert scope.policy is not None
        _refused(scope, credentials, account, screen.event_id, scope.policy.scope, screen.reason)
        result = ChainResult(Decision(Outcome.REJECT, screen.reason, event_id=screen.event_id))
    else:
        result = await _run_methods(scope, credentials, account)
    await _observe(scope, credentials, result, screen)
    await _delay(scope, credentials, result, started)
    return result


async def _run_methods(
    scope: LoginScope, credentials: Credentials, account: AccountRef
) -> ChainResult:
    configuration = scope.configuration
    for uuid in scope.methods:
        section = configuration.sections.get(("authentications", uuid))
        model = section.model if section else None
        model = model if isinstance(model, ComponentModel) else None
        ref = _method_ref(uuid, model)
        if model is not None and not model.runs_on(configuration.node_name):
            why = "disabled" if not model.enabled else "not placed on this node"
            _method_event(scope, "20111", credentials, account, ref, why)
            continue
        method = scope.find(("authentications", uuid))
        if method is None or not hasattr(method, "authenticate"):
            # The supervisor lists a component only while it runs (after its start, until
            # its stop begins): absent here means it failed to start or is being restarted.
            reason = "the method is not running (it failed to start, or is restarting)"
            _method_event(scope, "20256", credentials, account, ref, reason)
            return ChainResult(Decision(Outcome.FAILED, reason), ref)
        ref = method.ref
        try:
            decision: Decision = await method.authenticate(credentials)
        except Exception as error:
            # A method's own failure (a dead hashing worker, a bug) fails this login with a
            # reason (20256) instead of cutting the connection without one.
            decision = Decision(Outcome.FAILED, f"{ref.type} method failed: {error!r}")
        if decision.outcome is Outcome.ACCEPT and decision.account is not None:
            # Whatever method vouched for it (LDAP, HTTP, anonymous), the account's groups
            # decide which credentials it may use.
            refused = decision.account.refuses(credentials.type)
            if refused is not None:
                decision = Decision(Outcome.REJECT, refused)
        if decision.outcome is Outcome.UNKNOWN:
            if not getattr(method, "screening", False):
                _method_event(scope, "20255", credentials, account, ref, decision.reason)
            continue
        if decision.outcome is Outcome.FAILED:
            _method_event(scope, "20256", credentials, account, ref, decision.reason)
        elif decision.outcome is Outcome.REJECT:
            if decision.event_id:
                rule = f"authentications/{uuid}"
                _refused(scope, credentials, account, decision.event_id, rule, decision.reason)
            else:
                _method_event(scope, "20142", credentials, account, ref, decision.reason)
        return ChainResult(decision, ref)
    scope.emit(
        "20081",
        account=account,
        username=credentials.username,
        credentials_type=credentials.type,
        reason="no method knows the account",
    )
    return ChainResult(Decision(Outcome.UNKNOWN, "no method knows the account"))


def _method_event(
    scope: LoginScope,
    event_id: str,
    credentials: Credentials,
    account: AccountRef,
    method: ComponentRef,
    reason: str,
) -> None:
    scope.emit(
        event_id,
        account=account,
        username=credentials.username,
        credentials_type=credentials.type,
        method_name=method.name,
        method_type=method.type,
        reason=reason,
    )


def _refused(
    scope: LoginScope,
    credentials: Credentials,
    account: AccountRef,
    event_id: str,
    rule: str,
    reason: str,
) -> None:
    scope.emit(
        event_id,
        account=account,
        username=credentials.username,
        credentials_type=credentials.type,
        address=credentials.peer.address,
        rule=rule,
        reason=reason,
    )


async def _observe(
    scope: LoginScope, credentials: Credentials, result: ChainResult, screen: Screen | Refusal
) -> None:
    """Count a failed attempt toward bans: the policy's, and every ``ip-time-ban`` method's.

    An accepted attempt counts for nothing here: a key offer is accepted before its signature
    is checked, so only :func:`completed` (the login done) may clear failures."""
    if result.decision.outcome is Outcome.ACCEPT:
        return
    who = (credentials.username, credentials.type, credentials.peer.address)
    for uuid in scope.methods:
        method = scope.find(("authentications", uuid))
        observe = getattr(method, "observe", None)
        if observe is not None:
            try:
                await observe(credentials, result.decision)
            except Exception as error:  # a ban store fault must not fail the login itself
                _ban_store_failed(scope, who, f"authentications/{uuid}", "counted", error)
    policy, guard = scope.policy, scope.guard
    if policy is None or guard is None or screen is not Screen.CHECK:
        return
    try:
        await guard.observe(
            policy.scope,
            credentials,
            result.decision,
            policy.model.source_ip_ban_after_count,
            policy.model.source_ip_ban_interval,
            scope.emit,
        )
    except Exception as error:
        _ban_store_failed(scope, who, policy.scope, "counted", error)


def _ban_store_failed(
    scope: LoginScope, who: tuple[str, str, str], ban_scope: str, action: str, error: Exception
) -> None:
    """20272: the attempt was judged, but the state store did not take its bookkeeping.
    ``who`` is (user name, credentials type, address)."""
    username, credentials_type, address = who
    scope.emit(
        "20272",
        account=None,
        username=username,
        credentials_type=credentials_type,
        address=address,
        scope=ban_scope,
        action=action,
        reason=str(error) or repr(error),
    )


async def completed(
    scope: LoginScope, username: str, credentials_type: str, peer_address: str
) -> None:
    """The login is done (a key's signature checked too): the failures counted against the
    address are forgiven, for the policy and every ``ip-time-ban`` method."""
    who = (username, credentials_type, peer_address)
    for uuid in scope.methods:
        method = scope.find(("authentications", uuid))
        forgive = getattr(method, "completed", None)
        if forgive is not None:
            try:
                await forgive(peer_address)
            except Exception as error:
                _ban_store_failed(scope, who, f"authentications/{uuid}", "forgiven", error)
    policy, guard = scope.policy, scope.guard
    if policy is None or guard is None:
        return
    if policy.screen_address(guard, peer_address) is not Screen.CHECK:
        return
    try:
        await guard.succeeded(policy.scope, peer_address)
    except Exception as error:
        _ban_store_failed(scope, who, policy.scope, "forgiven", error)


async def _delay(
    scope: LoginScope, credentials: Credentials, result: ChainResult, started: float
) -> None:
    if result.decision.outcome is Outcome.ACCEPT or credentials.type != "password":
        return
    delay = scope.policy.model.failed_login_delay if scope.policy else 0.0
    remaining = delay - (time.monotonic() - started)
    if remaining > 0:
        await asyncio.sleep(remaining)


def login_scope(service: Component[Any]) -> LoginScope:
    """The chain as a service runs it: its own methods (else the server's) and its policy."""
    model = service.model
    assert isinstance(model, ServiceModel)
    configuration = service.configuration
    return LoginScope(
        configuration=configuration,
        methods=model.authentications or configuration.server.authentications,
        policy=active_policy(configuration, model.security_policy),
        find=service.context.find,
        guard=service.context.guard,
        emit=service.emit,
    )


def refused_at_connection(service: Component[Any], peer: Peer) -> bool:
    """``block_source_at_connection``: True (and event 20005) for a banned or denied address,
    judged before any protocol byte is sent, from the guard's memory so it needs no wait."""
    model = service.model
    assert isinstance(model, ServiceModel)
    guard = service.context.guard
    if not model.block_source_at_connection or guard is None:
        return False
    policy = active_policy(service.configuration, model.security_policy)
    if policy is None:
        return False
    screen = policy.screen_address(guard, peer.address)
    if not isinstance(screen, Refusal):
        return False
    service.emit(
        screen.event_id,
        account=AccountRef(name="", peer=peer),
        username="",
        credentials_type="-",
        address=peer.address,
        rule=policy.scope,
        reason=screen.reason + " (connection dropped)",
    )
    return True
