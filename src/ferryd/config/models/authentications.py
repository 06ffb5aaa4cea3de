"""Authentication method sections (reference 3.2)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, field_validator

from ferryd.config.models.base import ComponentModel, option
from ferryd.config.models.types import (
    CsvList,
    IniBool,
    IniInt,
    LineList,
    LowerCsvList,
    Seconds,
    Text,
)
from ferryd.ini import parse_csv, parse_lines


class ApplicationAuthenticationModel(ComponentModel):
    kind: ClassVar[str] = "authentications"
    type_name: ClassVar[str] = "application"
    summary: ClassVar[str] = "Authenticates the [accounts/...] defined in the configuration."

    type: Literal["application"] = option(doc="`application`.", example="application")
    allowed_groups: CsvList = option(
        (),
        doc="Group UUIDs whose accounts this method authenticates; empty: every group. "
        "Other accounts are left to the next method.",
        example="partners, DEFAULT_GROUP",
    )
    strict_group_access: IniBool = option(
        False,
        doc="`yes`: only the allowed groups' permissions and folders apply to the session.",
        example="yes",
    )

    def references(self) -> Iterable[tuple[str, str, Iterable[str]]]:
        return [("allowed_groups", "groups", self.allowed_groups)]


class LocalFileAuthenticationModel(ComponentModel):
    kind: ClassVar[str] = "authentications"
    type_name: ClassVar[str] = "local-file"
    summary: ClassVar[str] = (
        "Authenticates accounts kept in a separate file in the server.ini dialect; only its "
        "[accounts/...] and [groups/...] sections are read. The file is reloaded when it "
        "changes, without a restart; a broken file keeps the last good accounts."
    )

    type: Literal["local-file"] = option(doc="`local-file`.", example="local-file")
    path: Text = option(
        doc="The accounts file; relative paths are relative to the configuration folder.",
        example="/srv/ferryd/partners.ini",
        min_length=1,
    )
    external_management: IniBool = option(
        False,
        doc="`yes`: the file belongs to other tooling and ferryd never writes to it "
        "(plain-text passwords there cannot log in). `no`: ferryd may rewrite it, and "
        "replaces plain-text passwords by their hash as it does in server.ini.",
        example="yes",
    )
    changes_poll_interval: Seconds = option(
        2.0,
        doc="Seconds between checks of the file besides change notifications, for "
        "filesystems that send none (network shares). 0 relies on notifications only.",
        example="10",
    )


def _urls(value: object) -> object:
    if not isinstance(value, str):
        return value
    urls = tuple(parse_csv(value))
    if not urls:
        raise ValueError("expected one or more http:// or https:// URLs")
    for number, url in enumerate(urls, 1):
        if not re.match(r"^https?://[^/\s]+", url):
            # Not quoted: a URL may carry a password (https://user:secret@host/).
            raise ValueError(f"URL {number} of {len(urls)} is not an http:// or https:// URL")
    return urls


def _headers(value: object) -> object:
    if not isinstance(value, str):
        return value
    headers = []
    for number, line in enumerate(parse_lines(value), 1):
        name, colon, text = line.partition(":")
        if not colon or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name.strip()):
            # Not quoted: the line is likely "Authorization Bearer <token>" missing its colon.
            raise ValueError(f"header line {number} is not 'Name: value'")
        headers.append((name.strip(), text.strip()))
    return tuple(headers)


UrlList = Annotated[tuple[str, ...], BeforeValidator(_urls)]
HeaderList = Annotated[tuple[tuple[str, str], ...], BeforeValidator(_headers)]

_TLS_TRUST_DOC = (
    "PEM file of the certificate authorities trusted for the server's certificate; empty: "
    "the system's; `disable-identity-security`: no verification (tests only)."
)


_READINESS_DOC = (
    "`yes`: the node's `/health/ready` also checks that this server accepts connections, "
    "so a node that cannot reach it leaves the load balancer. Leave `no` when every node "
    "uses the same server: its outage would take every node out at once."
)


class HttpAuthenticationModel(ComponentModel):
    kind: ClassVar[str] = "authentications"
    type_name: ClassVar[str] = "http"
    summary: ClassVar[str] = (
        "Asks an HTTP identity service (reference 3.3): 204 or 200 accept, 401 means unknown "
        "(next method), 403 and anything else reject."
    )

    type: Literal["http"] = option(doc="`http`.", example="http")
    url: UrlList = option(
        doc="Identity service URLs, tried in order: a URL that fails is suspended and the "
        "next is used.",
        example="https://id1.example.com/auth, https://id2.example.com/auth",
    )
    timeout: Seconds = option(
        120.0, doc="Seconds to wait for an answer from one URL.", example="10", gt=0
    )
    url_suspend_interval: Seconds = option(
        300.0,
        doc="Seconds a URL that failed (no connection, timeout, 5xx) is skipped while "
        "another URL is available.",
        example="60",
    )
    username: Text = option("", doc="HTTP Basic user name sent to the service.", example="ferryd")
    password: Text = option(
        "",
        doc="HTTP Basic password (replaces any Authorization header).",
        example="s3cret",
        repr=False,
    )
    headers: HeaderList = option(
        (),
        doc="Extra request headers, one `Name: value` per line.",
        example="X-Api-Key: 0123456789abcdef",
    )
    test_at_start: IniBool = option(
        False,
        doc="`yes`: send a test request when the method starts and fail the start if no URL "
        "answers with a status of the contract.",
        example="yes",
    )
    tls_trusted_certificates: Text = option("", doc=_TLS_TRUST_DOC, example="ca-bundle.pem")
    readiness_check: IniBool = option(False, doc=_READINESS_DOC, example="yes")


@dataclass(frozen=True, slots=True)
class GroupMappingRule:
    """``attribute, match, group...``: a match is a case-insensitive glob or ``m/regex/``."""

    attribute: str
    pattern: re.Pattern[str]
    groups: tuple[str, ...]
    text: str


def _glob(expression: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(expression), re.IGNORECASE)


def parse_group_mapping(value: object) -> object:
    if not isinstance(value, str):
        return value
    rules = []
    for line in parse_lines(value):
        attribute, comma, rest = line.partition(",")
        rest = rest.strip()
        if rest.startswith("m/"):
            end = rest.find("/", 2)
            while end != -1 and rest[end - 1] == "\\":
                end = rest.find("/", end + 1)
            if end == -1:
                raise ValueError(f"unterminated m/regex/ in {line!r}")
            try:
                pattern = re.compile(rest[2:end], re.IGNORECASE)
            except re.error as error:
                raise ValueError(f"invalid regular expression in {line!r}: {error}") from None
            groups_text = rest[end + 1 :].lstrip()
            if groups_text and not groups_text.startswith(","):
                raise ValueError(f"expected a comma after the regular expression in {line!r}")
            groups = tuple(parse_csv(groups_text.removeprefix(",")))
        else:
            match, _, groups_text = rest.partition(",")
            pattern = _glob(match.strip())
            groups = tuple(parse_csv(groups_text))
        if not comma or not attribute.strip() or not groups:
            raise ValueError(
                f"expected 'ATTRIBUTE, MATCH, GROUP-UUID[, GROUP-UUID...]' per line, got {line!r}"
            )
        rules.append(GroupMappingRule(attribute.strip(), pattern, groups, line.strip()))
    return tuple(rules)


GroupMapping = Annotated[tuple[GroupMappingRule, ...], BeforeValidator(parse_group_mapping)]


class LdapAuthenticationModel(ComponentModel):
    kind: ClassVar[str] = "authentications"
    type_name: ClassVar[str] = "ldap"
    summary: ClassVar[str] = (
        "Binds to an LDAP or Active Directory server as the user (passwords only). LDAP is "
        "terminal: it accepts or rejects, and never passes a password login to the next method."
    )

    type: Literal["ldap"] = option(doc="`ldap`.", example="ldap")
    address: Text = option(doc="LDAP server host name or IP.", example="ldap.example.com")
    port: IniInt = option(389, doc="LDAP server port.", example="636", ge=1, le=65535)
    secure_connection: IniBool = option(
        False, doc="`yes`: LDAPS (TLS from the first byte).", example="yes"
    )
    tls_trusted_certificates: Text = option("", doc=_TLS_TRUST_DOC, example="ldap-ca.pem")
    readiness_check: IniBool = option(False, doc=_READINESS_DOC, example="yes")
    bind_dn_type: Literal["parent", "relative", "absolute", "direct-username"] = option(
        "parent",
        doc="How the bind DN is built from the login name: `parent` binds as "
        "`ATTRIBUTE=NAME,BASE`; `relative` searches each base for the entry whose "
        "`username_attribute` is the name and binds as it; `absolute` takes the login name as "
        "the full DN (it must end with a base when bases are set); `direct-username` binds "
        "with the name plus `username_suffix` (Active Directory `user@domain`).",
        example="relative",
    )
    bind_dn: LineList = option(
        (),
        doc="Base DNs, one per line, tried in order until one binds.",
        example="ou=people,dc=example,dc=com",
    )
    username_attribute: Text = option(
        "cn", doc="Attribute holding the login name.", example="uid", min_length=1
    )
    username_suffix: Text = option(
        "", doc="Appended to the name for `direct-username` binds.", example="@ad.example.com"
    )
    search_filter: Text = option(
        "",
        doc="LDAP filter the user's entry must also match, or the login is rejected.",
        example="(objectClass=inetOrgPerson)",
    )
    home_folder_attribute: Text = option(
        "",
        doc="Attribute holding the home folder, or `ATTRIBUTE, TEMPLATE` where `{ATTRIBUTE}` "
        "in the template is replaced by the value. Missing or multi-valued: login refused. "
        "Empty: the group's home folder.",
        example="uid, /srv/sftp/{uid}",
    )
    base_groups: CsvList = option(
        (),
        doc="Group UUIDs every LDAP account belongs to, after mapped groups; no group at "
        "all: DEFAULT_GROUP.",
        example="partners",
    )
    group_mapping: GroupMapping = option(
        (),
        doc="One rule per line, `ATTRIBUTE, MATCH, GROUP-UUID...`: when a value of the "
        "entry's attribute matches (case-insensitive glob, or `m/regex/`), the groups apply. "
        "The first mapped group is the primary group.",
        example="departmentNumber, finance*, finance-group",
    )
    timeout: Seconds = option(
        10.0,
        doc="Seconds (rounded up to whole seconds) to connect and to wait for each answer; "
        "past it the login is refused.",
        example="5",
        gt=0,
    )

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("expected a host name or IP address")
        return value.strip()

    def references(self) -> Iterable[tuple[str, str, Iterable[str]]]:
        mapped = [uuid for rule in self.group_mapping for uuid in rule.groups]
        return [("base_groups", "groups", self.base_groups), ("group_mapping", "groups", mapped)]


class AnonymousAuthenticationModel(ComponentModel):
    kind: ClassVar[str] = "authentications"
    type_name: ClassVar[str] = "anonymous"
    summary: ClassVar[str] = (
        "Logs in the name `anonymous` with any password or key as one application account."
    )

    type: Literal["anonymous"] = option(doc="`anonymous`.", example="anonymous")
    anonymous_account_uuid: Text = option(
        doc="UUID of the [accounts/...] section anonymous sessions run as.",
        example="public-downloads",
        min_length=1,
    )

    def references(self) -> Iterable[tuple[str, str, Iterable[str]]]:
        return [("anonymous_account_uuid", "accounts", [self.anonymous_account_uuid])]


class DenyUsernameAuthenticationModel(ComponentModel):
    kind: ClassVar[str] = "authentications"
    type_name: ClassVar[str] = "deny-username"
    summary: ClassVar[str] = (
        "Deprecated: use a security policy's `deny_usernames`. Rejects the listed names; "
        "place it first in the list."
    )

    type: Literal["deny-username"] = option(doc="`deny-username`.", example="deny-username")
    usernames: LowerCsvList = option(
        (), doc="Login names refused (case-insensitive).", example="root, admin"
    )
    administrators: LowerCsvList = option(
        (), doc="Administrator names refused (Web Manager).", example="admin"
    )


class IpTimeBanAuthenticationModel(ComponentModel):
    kind: ClassVar[str] = "authentications"
    type_name: ClassVar[str] = "ip-time-ban"
    summary: ClassVar[str] = (
        "Deprecated: use a security policy's ban options. Bans an address after consecutive "
        "failed logins; place it first in the list."
    )

    type: Literal["ip-time-ban"] = option(doc="`ip-time-ban`.", example="ip-time-ban")
    ban_after_count: IniInt = option(
        5, doc="Consecutive failures that ban the address; 0 never bans.", example="10", ge=0
    )
    ban_interval: Seconds = option(3600.0, doc="Seconds a ban lasts.", example="600")
