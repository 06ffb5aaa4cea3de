"""``{variable}`` templates: compiled once when the configuration is validated, rendered often.

Compiling checks every name against what the option allows, so an unknown variable is a
configuration error with a line number, never a surprise at run time. Names are
case-insensitive, as in SFTPPlus. A ``{`` that does not open a well-formed name (for example
JSON in a template) is literal text.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Mapping
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
    if name in _UTC_PARTS:
        return _UTC_PARTS[name](datetime.fromtimestamp(moment, UTC))
    return _LOCAL_PARTS[name](datetime.fromtimestamp(moment).astimezone())


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


def event_resolver(event: Event) -> Callable[[tuple[str, ...]], str]:
    """Resolve names against one event; missing values render as ``-``. Values are escaped
    to one line (a client-chosen file name cannot forge log lines); only ``{LF}``/``{CR}``
    put line breaks in an entry."""

    def resolve(name: tuple[str, ...]) -> str:
        value = _resolve(name)
        return value if name[0] in ("lf", "cr") else one_line(value)

    def _resolve(name: tuple[str, ...]) -> str:
        head, rest = name[0], name[1:]
        if head == "id":
            return event.id
        if head == "uuid":
            return event.uuid
        if head == "message":
            return event.message
        if head == "lf":
            return "\n"
        if head == "cr":
            return "\r"
        if head == "data_json":
            return json.dumps(event.data, default=str, sort_keys=True)
        if head == "timestamp":
            return format_timestamp(rest[0], event.timestamp)
        if head == "host":
            return event.server.node if rest[0] == "name" else host_fqdn()
        if head == "server":
            return event.server.uuid if rest[0] == "uuid" else event.server.name
        if head == "component":
            return MISSING if event.component is None else str(getattr(event.component, rest[0]))
        if head == "account":
            account = event.account
            if account is None:
                return MISSING
            if rest[0] == "peer":
                return MISSING if account.peer is None else str(getattr(account.peer, rest[1]))
            return str(getattr(account, rest[0])) or MISSING
        if head == "data":
            return _walk(event.data, rest)
        return _walk(event.data, name)

    return resolve


def render_event(template: Template, event: Event) -> str:
    return template.render(event_resolver(event))
