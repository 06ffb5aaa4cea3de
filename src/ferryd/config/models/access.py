"""Value types for who may do what where: permissions, virtual folders, source IP filters.

They are parsed once when the configuration loads, so a misspelt permission or a bad CIDR is
refused with its line instead of surfacing as a puzzling denial at the first login.
"""

from __future__ import annotations

import fnmatch
import glob
import ipaddress
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BeforeValidator

from ferryd.ini import parse_bool, parse_csv, parse_lines

# Every permission verb of SFTPPlus (reference 3.6), in the order the docs list them.
VERBS = (
    "read",
    "list",
    "traverse",
    "create-folder",
    "write",
    "rename",
    "delete-file",
    "delete-folder",
    "set-attributes",
)
_LEGACY = {
    "read": ("read", "list", "traverse"),
    "write": ("write", "create-folder"),
}
INHERIT = "inherit"


@dataclass(frozen=True, slots=True)
class PermissionSet:
    """Verbs allowed and denied; a deny always beats an allow of the same verb."""

    allowed: frozenset[str] = frozenset()
    denied: frozenset[str] = frozenset()

    def permits(self, verb: str) -> bool:
        return verb in self.allowed and verb not in self.denied


def parse_permission_set(values: list[str]) -> PermissionSet:
    allowed: set[str] = set()
    denied: set[str] = set()
    for raw in values:
        value = raw.strip().lower()
        if value in _LEGACY:
            allowed.update(_LEGACY[value])
            continue
        action, _, verb = value.partition("-")
        if action not in ("allow", "deny") or not (verb == "full-control" or verb in VERBS):
            expected = ", ".join(f"allow-{v}" for v in ("full-control", *VERBS))
            raise ValueError(f"unknown permission {raw.strip()!r}; expected deny-… or {expected}")
        verbs = set(VERBS) if verb == "full-control" else {verb}
        (allowed if action == "allow" else denied).update(verbs)
    return PermissionSet(frozenset(allowed), frozenset(denied))


@dataclass(frozen=True, slots=True)
class PathRule:
    """One ``path-expression, permission...`` line: glob, ``m/regex/`` or ``e/negated regex/``."""

    expression: str
    permissions: PermissionSet

    def for_user(self, username: str) -> PathRule:
        """``${USER}`` filled in as a literal: a name holding ``*``, ``?``, ``[`` or regex
        characters (from a directory, say) must not widen the rule to other paths."""
        is_regex = self.expression[:2] in ("m/", "e/")
        literal = re.escape(username) if is_regex else glob.escape(username)
        return PathRule(self.expression.replace("${USER}", literal), self.permissions)

    def matches(self, virtual_path: str) -> bool:
        expression = self.expression
        if expression.startswith("m/") and expression.endswith("/") and len(expression) > 2:
            return re.search(expression[2:-1], virtual_path) is not None
        if expression.startswith("e/") and expression.endswith("/") and len(expression) > 2:
            return re.search(expression[2:-1], virtual_path) is None
        return fnmatch.fnmatchcase(virtual_path, expression)


@dataclass(frozen=True, slots=True)
class Permissions:
    """The global set and the path rules; the first rule matching a path replaces the global set."""

    global_set: PermissionSet
    rules: tuple[PathRule, ...] = ()

    def at(self, virtual_path: str) -> PermissionSet:
        for rule in self.rules:
            if rule.matches(virtual_path):
                return rule.permissions
        return self.global_set

    def permits(self, verb: str, virtual_path: str) -> bool:
        return self.at(virtual_path).permits(verb)

    def for_user(self, username: str) -> Permissions:
        return Permissions(self.global_set, tuple(r.for_user(username) for r in self.rules))


FULL_CONTROL = Permissions(PermissionSet(frozenset(VERBS)))


def parse_permissions(value: object) -> object:
    """First line: global permissions; each next line: ``path-expression, permission...``."""
    if not isinstance(value, str):
        return value
    lines = parse_lines(value)
    if not lines:
        raise ValueError("expected permissions such as allow-full-control, got an empty value")
    global_set = parse_permission_set(parse_csv(lines[0]))
    rules = []
    for number, line in enumerate(lines[1:], start=2):
        parts = parse_csv(line)
        if len(parts) < 2:
            raise ValueError(
                f"line {number} of the value: expected 'path-expression, permission...', "
                f"got {line.strip()!r}"
            )
        expression = parts[0]
        if expression[:2] in ("m/", "e/"):
            try:
                re.compile(expression[2:-1])
            except re.error as error:
                raise ValueError(f"bad regular expression {expression!r}: {error}") from None
        try:
            rules.append(PathRule(expression, parse_permission_set(parts[1:])))
        except ValueError as error:
            raise ValueError(f"line {number} of the value: {error}") from None
    return Permissions(global_set, tuple(rules))


@dataclass(frozen=True, slots=True)
class VirtualFolder:
    """A folder of the real filesystem shown at ``virtual`` inside the account's jail."""

    virtual: str
    real: str

    def for_user(self, username: str) -> VirtualFolder:
        return VirtualFolder(self.virtual, self.real.replace("${USER}", username))


def parse_virtual_folders(value: object) -> object:
    """One ``/virtual/path, /real/path`` per line; empty: none."""
    if not isinstance(value, str):
        return value
    lines = parse_lines(value)
    folders = []
    seen: set[str] = set()
    for line in lines:
        virtual, sep, real = line.partition(",")
        virtual, real = virtual.strip(), real.strip()
        if not sep or not virtual or not real:
            raise ValueError(f"expected '/virtual/path, /real/path', got {line.strip()!r}")
        normal = posixpath.normpath(virtual)
        if not virtual.startswith("/") or normal == "/" or normal != virtual.rstrip("/"):
            raise ValueError(
                f"virtual path {virtual!r} must be absolute, normalised and not '/' itself"
            )
        if "\x00" in virtual or "\x00" in real:
            raise ValueError("paths cannot contain NUL characters")
        if normal in seen:
            raise ValueError(f"virtual path {normal!r} is listed twice")
        seen.add(normal)
        folders.append(VirtualFolder(normal, real))
    return tuple(folders)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def in_network(address: str, network: Network) -> bool:
    """Whether ``address`` (IPv4-mapped IPv6 counts as its IPv4) is in ``network``; an
    address that does not parse is in none."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.version == network.version and ip in network


@dataclass(frozen=True, slots=True)
class SourceIpFilter:
    """``allow``/``deny`` rules, first match wins, and anything unmatched is denied."""

    rules: tuple[tuple[bool, Network], ...]

    def match(self, address: str) -> bool | None:
        """The first matching rule's verdict (True: allow), or None when no rule matches."""
        return next((allow for allow, network in self.rules if in_network(address, network)), None)

    def permits(self, address: str) -> bool:
        return self.match(address) is True


def parse_source_ip_filter(value: object) -> object:
    if not isinstance(value, str):
        return value
    lines = parse_lines(value)
    if not lines:
        return None  # no filter
    rules = []
    for line in lines:
        action, _, target = line.strip().partition(" ")
        if action.lower() not in ("allow", "deny") or not target.strip():
            raise ValueError(f"expected 'allow ADDRESS-OR-CIDR' or 'deny ...', got {line!r}")
        try:
            network = ipaddress.ip_network(target.strip(), strict=False)
        except ValueError:
            raise ValueError(f"{target.strip()!r} is not an IP address or CIDR network") from None
        rules.append((action.lower() == "allow", network))
    return SourceIpFilter(tuple(rules))


def parse_datetime(value: object) -> object:
    """Relaxed ISO-8601 (``2026-12-31``, ``2026-12-31 18:00``); no offset means UTC."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        expected = "a date such as 2026-12-31 or 2026-12-31 18:00"
        raise ValueError(f"expected {expected}, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


Credential = Literal["password", "ssh-key"]
CREDENTIAL_CHOICES = ("any", "password", "ssh-key")


def parse_required_credentials(value: object) -> object:
    """``any``, ``password`` or ``ssh-key``; ``inherit`` (accounts) takes the group's."""
    if not isinstance(value, str):
        return value
    parts = [p.lower() for p in parse_csv(value)]
    if parts == [INHERIT]:
        return None
    if sorted(parts) == ["password", "ssh-key"]:
        raise ValueError(
            "'password, ssh-key' (both at once) is not implemented yet: SSH partial success "
            "is not exposed by the SSH library; use 'password', 'ssh-key' or 'any'"
        )
    if len(parts) != 1 or parts[0] not in CREDENTIAL_CHOICES:
        raise ValueError(f"expected one of {', '.join(CREDENTIAL_CHOICES)}, got {value.strip()!r}")
    return parts[0]


def _inheritable(parse: Callable[[str], object]) -> Callable[[object], object]:
    """Empty or ``inherit`` means "take the group's" (None); anything else goes to ``parse``."""

    def validate(value: object) -> object:
        if not isinstance(value, str):
            return value
        text = value.strip()
        return None if text.lower() in ("", INHERIT) else parse(text)

    return validate


def _byte_count(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"expected a number of bytes (0: no limit), got {text!r}") from None
    if number < 0:
        raise ValueError(f"expected zero or more bytes, got {text!r}")
    return number


# Groups and policies have nothing to inherit from: `inherit` there is an error, not a
# silent "full control" or "no filter".
PermissionsOption = Annotated[Permissions, BeforeValidator(parse_permissions)]
VirtualFoldersOption = Annotated[tuple[VirtualFolder, ...], BeforeValidator(parse_virtual_folders)]
SourceIpOption = Annotated[SourceIpFilter | None, BeforeValidator(parse_source_ip_filter)]
# Accounts: empty or `inherit` (None) takes the groups'.
InheritPermissions = Annotated[Permissions | None, BeforeValidator(_inheritable(parse_permissions))]
InheritVirtualFolders = Annotated[
    tuple[VirtualFolder, ...] | None, BeforeValidator(_inheritable(parse_virtual_folders))
]
InheritSourceIp = Annotated[
    SourceIpFilter | None, BeforeValidator(_inheritable(parse_source_ip_filter))
]
DateTimeOption = Annotated[datetime | None, BeforeValidator(parse_datetime)]
CredentialsOption = Annotated[str | None, BeforeValidator(parse_required_credentials)]
SizeOption = Annotated[int | None, BeforeValidator(_inheritable(_byte_count))]
InheritBool = Annotated[bool | None, BeforeValidator(_inheritable(parse_bool))]
InheritText = Annotated[str | None, BeforeValidator(_inheritable(str))]
