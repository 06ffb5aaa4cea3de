"""``{variable}`` templates: compiled once when the configuration is validated, rendered often.

Compiling checks every name against what the option allows, so an unknown variable is a
configuration error with a line number, never a surprise at run time. Names are
case-insensitive, as in SFTPPlus. A ``{`` that does not open a well-formed name (for example
JSON in a template) is literal text.
"""

from __future__ import annotations

import json
import math
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from ferryd.events.catalogue import BASE_FIELDS, data_fields
from ferryd.events.event import Event, one_line

_NAME = re.compile(r"\{([A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)*)\}")
MISSING = "-"


class UnknownVariable(ValueError):
    def __init__(self, name: str, allowed: str) -> None:
        super().__init__(f"unknown variable {{{name}}}; {allowed}")
        self.name = name


def _two(value: int) -> str:
    return f"{value:02d}"


_LOCAL_PARTS: dict[str, Callable[[datetime], str]] = {
    "year_decimal": lambda d: str(d.year),
    "year_no_century": lambda d: _two(d.year % 100),
    "month_decimal": lambda d: str(d.month),
    "month_padded": lambda d: _two(d.month),
    "day_decimal": lambda d: str(d.day),
    "day_padded": lambda d: _two(d.day),
    "day_of_year_padded": lambda d: d.strftime("%j"),
    "hour_decimal_24": lambda d: str(d.hour),
    "hour_padded_24": lambda d: _two(d.hour),
    "hour_decimal_12": lambda d: str(d.hour % 12 or 12),
    "hour_padded_12": lambda d: _two(d.hour % 12 or 12),
    "hour_am_pm": lambda d: "AM" if d.hour < 12 else "PM",
    "minute_decimal": lambda d: str(d.minute),
    "minute_padded": lambda d: _two(d.minute),
    "second_decimal": lambda d: str(d.second),
    "second_padded": lambda d: _two(d.second),
    "cwa_14051": lambda d: d.strftime("%Y-%m-%d %H:%M:%S"),
    "iso_8601_local": lambda d: d.isoformat(timespec="seconds"),
}
_UTC_PARTS: dict[str, Callable[[datetime], str]] = {
    "iso_8601": lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ"),
    "iso_8601_fractional": lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    "iso_8601_basic": lambda d: d.strftime("%Y%m%dT%H%M%SZ"),
    "iso_8601_compact": lambda d: d.strftime("%Y%m%dT%H%M%S"),
}
TIMESTAMP_FORMATS: frozenset[str] = frozenset([*_LOCAL_PARTS, *_UTC_PARTS, "timestamp"])


def format_timestamp(name: str, moment: float) -> str:
    """One of SFTPPlus's 23 ``timestamp.*`` formats; local ones use the server's time zone."""
    if name == "timestamp":
        return f"{moment:.6f}"
    if name == "iso_8601_fractional":
        return _UTC_PARTS[name](datetime.fromtimestamp(moment, UTC))
    return _whole_second(name, _second_of(moment))


def _second_of(moment: float) -> int:
    """The second ``datetime`` shows for ``moment``: it rounds to the microsecond first, so
    0.9999996 s is already the next second (as the fractional format shows it)."""
    fraction, whole = math.modf(moment)
    micro = round(fraction * 1_000_000)
    second = int(whole)
    if micro >= 1_000_000:
        return second + 1
    return second - 1 if micro < 0 else second


@lru_cache(maxsize=64)
def _whole_second(name: str, second: int) -> str:
    """Formats that show whole seconds, made once per second and format: events come many a
    second, and a local time costs a time zone conversion."""
    if name in _UTC_PARTS:
        return _UTC_PARTS[name](datetime.fromtimestamp(second, UTC))
    return _LOCAL_PARTS[name](datetime.fromtimestamp(second).astimezone())


@lru_cache(maxsize=1)
def host_fqdn() -> str:
    return socket.getfqdn()


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled template: literal strings alternating with dotted variable names."""

    text: str
    parts: tuple[str | tuple[str, ...], ...]

    def render(self, resolve: Callable[[tuple[str, ...]], str]) -> str:
        return "".join(p if isinstance(p, str) else resolve(p) for p in self.parts)


def compile_template(text: str, allowed: Callable[[tuple[str, ...]], bool], hint: str) -> Template:
    """Raises UnknownVariable (a ValueError) for the first name ``allowed`` refuses."""
    parts: list[str | tuple[str, ...]] = []
    position = 0
    for match in _NAME.finditer(text):
        name = tuple(match.group(1).lower().split("."))
        if not allowed(name):
            raise UnknownVariable(match.group(1), hint)
        if match.start() > position:
            parts.append(text[position : match.start()])
        parts.append(name)
        position = match.end()
    if position < len(text):
        parts.append(text[position:])
    return Template(text, tuple(parts))


# -- templates rendered with the process identity only (paths such as a log file's) --------

IDENTITY_VARIABLES = ("host.name", "host.fqdn", "server.uuid", "server.name")


def identity_allowed(name: tuple[str, ...]) -> bool:
    return ".".join(name) in IDENTITY_VARIABLES


IDENTITY_HINT = "paths may use " + ", ".join("{" + v + "}" for v in IDENTITY_VARIABLES)


def render_identity(template: Template, *, node: str, server_uuid: str, server_name: str) -> str:
    values: dict[tuple[str, ...], str] = {
        ("host", "name"): node,
        ("host", "fqdn"): host_fqdn(),
        ("server", "uuid"): server_uuid,
        ("server", "name"): server_name,
    }
    return template.render(lambda name: values[name])


# -- templates rendered per event (entry_content and friends) ------------------------------

_ACCOUNT_FIELDS = frozenset(["name", "uuid", "email"])
_PEER_FIELDS = frozenset(["address", "port", "family", "protocol"])
_COMPONENT_FIELDS = frozenset(["uuid", "type", "name", "kind"])
_SERVER_FIELDS = frozenset(["uuid", "name"])
_HOST_FIELDS = frozenset(["name", "fqdn"])

EVENT_HINT = (
    "event templates may use {id}, {uuid}, {message}, {account.name|uuid|email}, "
    "{account.peer.address|port|family|protocol}, {component.uuid|type|name}, "
    "{server.uuid|name}, {host.name|fqdn}, {timestamp.FORMAT}, {data.MEMBER}, {data_json}, "
    "{LF}, {CR} and the data members listed in docs/events.md"
)


def event_allowed(name: tuple[str, ...]) -> bool:
    head, rest = name[0], name[1:]
    if head in ("id", "uuid", "message", "data_json", "lf", "cr"):
        return not rest
    if head == "account":
        if rest[:1] == ("peer",):
            return len(rest) == 2 and rest[1] in _PEER_FIELDS
        return len(rest) == 1 and rest[0] in _ACCOUNT_FIELDS
    fields = {"component": _COMPONENT_FIELDS, "server": _SERVER_FIELDS, "host": _HOST_FIELDS}
    if head in fields:
        return len(rest) == 1 and rest[0] in fields[head]
    if head == "timestamp":
        return len(rest) == 1 and rest[0] in TIMESTAMP_FORMATS
    if head == "data":
        return len(rest) >= 1
    return head not in BASE_FIELDS and head in data_fields()


def _walk(value: Any, path: tuple[str, ...]) -> str:
    for key in path:
        if not isinstance(value, Mapping):
            return MISSING
        found = value.get(key)
        if found is None:  # names are case-insensitive; ferryd's own keys are lower-case
            found = next((v for k, v in value.items() if str(k).lower() == key), None)
        value = found
        if value is None:
            return MISSING
    return (
        value
        if isinstance(value, str)
        else json.dumps(value)
        if isinstance(value, (dict, list))
        else str(value)
    )


EventGetter = Callable[[Event], str]

_FIELDS: dict[str, EventGetter] = {
    "id": lambda e: e.id,
    "uuid": lambda e: e.uuid,
    "message": lambda e: e.message,
    "data_json": lambda e: json.dumps(e.data, default=str, sort_keys=True),
}


def _account_getter(rest: tuple[str, ...]) -> EventGetter:
    if rest[0] == "peer":
        field_name = rest[1]

        def peer(event: Event) -> str:
            account = event.account
            if account is None or account.peer is None:
                return MISSING
            return str(getattr(account.peer, field_name))

        return peer
    member = rest[0]

    def account(event: Event) -> str:
        return MISSING if event.account is None else str(getattr(event.account, member)) or MISSING

    return account


def _component_getter(member: str) -> EventGetter:
    def component(event: Event) -> str:
        return MISSING if event.component is None else str(getattr(event.component, member))

    return component


def _getter(name: tuple[str, ...]) -> EventGetter:
    """What reads ``name`` from an event, decided once per template rather than per event."""
    head, rest = name[0], name[1:]
    if head in _FIELDS:
        return _FIELDS[head]
    if head == "timestamp":
        fmt = rest[0]
        return lambda e: format_timestamp(fmt, e.timestamp)
    if head == "host":
        return (lambda e: e.server.node) if rest[0] == "name" else (lambda _: host_fqdn())
    if head == "server":
        return (lambda e: e.server.uuid) if rest[0] == "uuid" else (lambda e: e.server.name)
    if head == "component":
        return _component_getter(rest[0])
    if head == "account":
        return _account_getter(rest)
    path = rest if head == "data" else name
    return lambda e: _walk(e.data, path)


def _escaped(name: tuple[str, ...]) -> str | EventGetter:
    """Values are escaped to one line (a client-chosen file name cannot forge log lines);
    only ``{LF}``/``{CR}`` put line breaks in an entry."""
    if name[0] == "lf":
        return "\n"
    if name[0] == "cr":
        return "\r"
    get = _getter(name)
    return lambda e: one_line(get(e))


@lru_cache(maxsize=256)
def _program(parts: tuple[str | tuple[str, ...], ...]) -> tuple[str | EventGetter, ...]:
    """A template's parts with each name turned into its getter, made once per template
    (kept here rather than on the Template, which configuration models hold)."""
    return tuple(p if isinstance(p, str) else _escaped(p) for p in parts)


def render_event(template: Template, event: Event) -> str:
    """``template`` filled from ``event``; missing values render as ``-``."""
    return "".join([p if isinstance(p, str) else p(event) for p in _program(template.parts)])


def render_entries(template: Template, events: Iterable[Event]) -> str:
    """One line per event, each ending with a line break (the template's own, or one
    added): what the file and console handlers write."""
    lines = (render_event(template, event) for event in events)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
