"""SFTPPlus handler filter semantics: AND across filters, OR within, `!` excludes."""

from __future__ import annotations

import pytest

from ferryd.events.event import AccountRef, ComponentRef, Event, Peer, ServerRef
from ferryd.events.filters import EventFilter

SERVER = ServerRef("s", "s", "n")


def event(
    event_id: str = "30011",
    groups: tuple[str, ...] = ("session", "success"),
    user: str | None = "acme",
    address: str | None = "192.0.2.1",
    component: str | None = "sftp-1",
) -> Event:
    account = None
    if user is not None:
        account = AccountRef(user, peer=Peer(address, 22) if address else None)
    ref = ComponentRef(component, "ssh", "sftp") if component else None
    return Event(event_id, frozenset(groups), "m", SERVER, {}, ref, account)


def test_empty_filter_handles_everything() -> None:
    assert EventFilter.everything().matches(event(user=None, component=None))


def test_target_ids_select_and_exclusions_skip() -> None:
    assert EventFilter.parse(target=["30011", "30012"]).matches(event("30011"))
    assert not EventFilter.parse(target=["30012"]).matches(event("30011"))
    assert not EventFilter.parse(target=["!30011"]).matches(event("30011"))
    assert EventFilter.parse(target=["!30012"]).matches(event("30011"))


def test_target_cannot_mix_ids_and_exclusions() -> None:
    with pytest.raises(ValueError, match="target: use either event ids or '!id'"):
        EventFilter.parse(target=["30011", "!30012"])


def test_groups_match_any_listed_and_any_exclusion_wins() -> None:
    assert EventFilter.parse(groups=["failure", "session"]).matches(event())
    assert not EventFilter.parse(groups=["failure"]).matches(event())
    assert not EventFilter.parse(groups=["session", "!success"]).matches(event())
    assert EventFilter.parse(groups=["SESSION"]).matches(event())


def test_usernames_positive_list_skips_events_without_account() -> None:
    only_acme = EventFilter.parse(usernames=["acme"])
    assert only_acme.matches(event(user="acme"))
    assert not only_acme.matches(event(user="globex"))
    assert not only_acme.matches(event(user=None))
    not_acme = EventFilter.parse(usernames=["!acme"])
    assert not not_acme.matches(event(user="acme"))
    assert not_acme.matches(event(user=None))


def test_source_addresses_exclude_load_balancer_probes() -> None:
    no_probe = EventFilter.parse(source_addresses=["!10.0.0.5"])
    assert not no_probe.matches(event(address="10.0.0.5"))
    assert no_probe.matches(event(address="192.0.2.1"))


def test_filters_are_anded() -> None:
    both = EventFilter.parse(target=["30011"], usernames=["globex"])
    assert not both.matches(event("30011", user="acme"))
    assert both.matches(event("30011", user="globex"))


def test_components_filter() -> None:
    assert EventFilter.parse(components=["sftp-1"]).matches(event())
    assert not EventFilter.parse(components=["!sftp-1"]).matches(event())
    assert not EventFilter.parse(components=["sftp-1"]).matches(event(component=None))


def test_bare_exclamation_mark_is_an_error_naming_the_option() -> None:
    with pytest.raises(ValueError, match="usernames: '!' must be followed by a value"):
        EventFilter.parse(usernames=["!"])
