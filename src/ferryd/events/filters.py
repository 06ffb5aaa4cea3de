"""SFTPPlus handler filters: which events a handler receives.

Filters are ANDed; the values inside one filter are ORed; a value starting with ``!`` excludes.
An empty filter lets everything through. ``target`` may hold ids or ``!id`` exclusions but not
both (SFTPPlus does not define what a mix means, so ferryd refuses it rather than guess).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ferryd.events.event import Event


@dataclass(frozen=True, slots=True)
class _Selector:
    include: frozenset[str]
    exclude: frozenset[str]

    @classmethod
    def parse(cls, values: Sequence[str], *, fold_case: bool = False) -> _Selector:
        include: set[str] = set()
        exclude: set[str] = set()
        for raw in values:
            value = raw.strip()
            if fold_case:
                value = value.lower()
            if value.startswith("!"):
                name = value[1:].strip()
                if not name:
                    raise ValueError("'!' must be followed by a value")
                exclude.add(name)
            elif value:
                include.add(value)
        return cls(frozenset(include), frozenset(exclude))

    @property
    def empty(self) -> bool:
        return not self.include and not self.exclude

    def admits_one(self, value: str | None) -> bool:
        """For single-valued attributes; a missing value passes only pure-exclusion filters."""
        if value is None:
            return not self.include
        if value in self.exclude:
            return False
        return not self.include or value in self.include

    def admits_any(self, values: frozenset[str]) -> bool:
        if values & self.exclude:
            return False
        return not self.include or bool(values & self.include)


@dataclass(frozen=True, slots=True)
class EventFilter:
    target: _Selector
    groups: _Selector
    usernames: _Selector
    components: _Selector
    source_addresses: _Selector

    @classmethod
    def parse(
        cls,
        *,
        target: Sequence[str] = (),
        groups: Sequence[str] = (),
        usernames: Sequence[str] = (),
        components: Sequence[str] = (),
        source_addresses: Sequence[str] = (),
    ) -> EventFilter:
        """Raises ValueError naming the option at fault."""
        parsed = {}
        for option, values, fold in (
            ("target", target, False),
            ("groups", groups, True),
            ("usernames", usernames, False),
            ("components", components, False),
            ("source_addresses", source_addresses, False),
        ):
            try:
                parsed[option] = _Selector.parse(values, fold_case=fold)
            except ValueError as error:
                raise ValueError(f"{option}: {error}") from None
        if parsed["target"].include and parsed["target"].exclude:
            raise ValueError(
                "target: use either event ids or '!id' exclusions, not both "
                "(an id list already excludes everything else)"
            )
        return cls(**parsed)

    @classmethod
    def everything(cls) -> EventFilter:
        return cls.parse()

    def matches(self, event: Event) -> bool:
        component = event.component.uuid if event.component else None
        return (
            self.target.admits_one(event.id)
            and self.groups.admits_any(event.groups)
            and self.usernames.admits_one(event.username)
            and self.components.admits_one(component)
            and self.source_addresses.admits_one(event.peer_address)
        )
