"""Option value types: INI text in, typed values out, with messages an administrator can act on.

Every parser raises ValueError with the expected form and the value found; the loader adds
file, line, section and option.
"""

from __future__ import annotations

import ipaddress
import math
from typing import Annotated

from pydantic import BeforeValidator

from ferryd.config.variables import (
    EVENT_HINT,
    IDENTITY_HINT,
    Template,
    compile_template,
    event_allowed,
    identity_allowed,
)
from ferryd.ini import parse_bool, parse_csv, parse_lines


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {value!r}")
    return value


def _bool(value: object) -> object:
    return parse_bool(value) if isinstance(value, str) else value


def _int(value: object) -> object:
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected a whole number, got {text!r}") from None
    return value


def _seconds(value: object) -> object:
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"expected a number of seconds, got {text!r}") from None
        if not math.isfinite(number):
            # float() reads "nan" and "inf": nan compares false with everything (a delay
            # silently off, a ban that never ends) and inf overflows later conversions.
            raise ValueError(f"expected a finite number of seconds, got {text!r}")
        if number < 0:
            raise ValueError(f"expected zero or more seconds, got {text!r}")
        return number
    return value


def _csv(value: object) -> object:
    return tuple(parse_csv(value)) if isinstance(value, str) else value


def _lower_csv(value: object) -> object:
    found = _csv(value)
    return tuple(str(name).lower() for name in found) if isinstance(found, tuple) else found


def _networks(value: object) -> object:
    if not isinstance(value, str):
        return value
    networks = []
    for item in parse_csv(value):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(
                f"expected IP networks such as 10.0.0.0/24, 192.0.2.7 or ::1, got {item!r}"
            ) from None
    return tuple(networks)


def _lines(value: object) -> object:
    return tuple(parse_lines(value)) if isinstance(value, str) else value


def _event_template(value: object) -> object:
    if isinstance(value, str):
        return compile_template(value, event_allowed, EVENT_HINT)
    return value


def _path_template(value: object) -> object:
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("expected a path, got an empty value")
        return compile_template(value.strip(), identity_allowed, IDENTITY_HINT)
    return value


IniBool = Annotated[bool, BeforeValidator(_bool)]
IniInt = Annotated[int, BeforeValidator(_int)]
Seconds = Annotated[float, BeforeValidator(_seconds)]
CsvList = Annotated[tuple[str, ...], BeforeValidator(_csv)]
# Login names compared without regard to case: stored lower-cased once, at load.
LowerCsvList = Annotated[tuple[str, ...], BeforeValidator(_lower_csv)]
Networks = Annotated[
    tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], BeforeValidator(_networks)
]
LineList = Annotated[tuple[str, ...], BeforeValidator(_lines)]
EventTemplate = Annotated[Template, BeforeValidator(_event_template)]
PathTemplate = Annotated[Template, BeforeValidator(_path_template)]
Text = Annotated[str, BeforeValidator(_text)]


def event_template(text: str) -> Template:
    return compile_template(text, event_allowed, EVENT_HINT)


def path_template(text: str) -> Template:
    return compile_template(text, identity_allowed, IDENTITY_HINT)
