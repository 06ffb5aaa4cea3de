"""The blocking side of ``ldap`` authentication: binding as the user in each bind style,
reading the user's entry, and a small pool of rebound connections, all run on the method's
own threads (ldap3 blocks). See ``ferryd.auth.methods.ldap`` for the rules.
"""

from __future__ import annotations

import ast
import contextlib
import math
import re
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ldap3
from ldap3.core.exceptions import (
    LDAPCommunicationError,
    LDAPException,
    LDAPInvalidDnError,
    LDAPPasswordIsMandatoryError,
    LDAPResponseTimeoutError,
    LDAPSASLPrepError,
)
from ldap3.operation.search import parse_filter
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn, parse_dn

from ferryd.config.configuration import Configuration
from ferryd.config.models.authentications import GroupMappingRule, LdapAuthenticationModel
from ferryd.tls_trust import resolve_trust

POOL_SIZE = 4  # threads, and idle connections kept open
_SIZE_LIMIT_EXCEEDED = 4
_NO_SUCH_OBJECT = 32
_INVALID_DN_SYNTAX = 34
_INVALID_CREDENTIALS = 49
_ATTRIBUTE = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(\.[0-9]+)+")
# A dead connection shows as a socket error, or as no answer at all (ldap3 reads EOF so).
_CONNECTION_ERRORS = (LDAPCommunicationError, LDAPResponseTimeoutError)


class Refused(Exception):
    """The login is refused for the client's or the entry's sake (REJECT)."""


class Unavailable(Exception):
    """The server cannot decide: unreachable, silent, untrusted, or answering an error."""


@dataclass(frozen=True, slots=True)
class Entry:
    dn: str
    attributes: Mapping[str, tuple[str, ...]]  # lower-case attribute name -> values
    found: bool = True


@dataclass(frozen=True, slots=True)
class Settings:
    """The model checked and turned into what the blocking side needs, once per change."""

    url: str
    host: str
    port: int
    tls: ldap3.Tls | None
    timeout: float
    style: str
    bases: tuple[str, ...]
    attribute: str
    suffix: str
    search_filter: str
    home_attribute: str
    home_template: str | None
    mapping: tuple[GroupMappingRule, ...]
    base_groups: tuple[str, ...]

    @property
    def receive_timeout(self) -> int:
        return max(1, math.ceil(self.timeout))  # ldap3 packs it as whole seconds

    @property
    def attempt_limit(self) -> float:
        """How long an attempt may take, waiting for a free thread included."""
        return 2.0 * self.receive_timeout

    @property
    def wanted(self) -> list[str]:
        names = [self.home_attribute] if self.home_attribute else []
        names += [rule.attribute for rule in self.mapping]
        return list(dict.fromkeys(names))

    @classmethod
    def from_model(cls, model: LdapAuthenticationModel, configuration: Configuration) -> Settings:
        """Raise ValueError naming the option at fault."""
        host = model.address
        scheme = "ldaps" if model.secure_connection else "ldap"
        url = (
            f"{scheme}://[{host}]:{model.port}"
            if ":" in host
            else f"{scheme}://{host}:{model.port}"
        )
        for base in model.bind_dn:
            if not _dn_parts(base):
                raise ValueError(f"bind_dn: {base!r} is not a DN")
        if model.bind_dn_type in ("parent", "relative") and not model.bind_dn:
            raise ValueError(f"bind_dn: bind_dn_type {model.bind_dn_type} needs a base DN")
        _check_attribute("username_attribute", model.username_attribute)
        search_filter = model.search_filter.strip()
        if search_filter:
            try:
                parse_filter(search_filter, None, False, False, None, False)
            except LDAPException as error:
                raise ValueError(f"search_filter: {search_filter!r}: {error}") from None
        home_attribute, comma, template = model.home_folder_attribute.partition(",")
        home_attribute, template = home_attribute.strip(), template.strip()
        if home_attribute:
            _check_attribute("home_folder_attribute", home_attribute)
            if comma and not template:
                raise ValueError("home_folder_attribute: expected 'ATTRIBUTE, TEMPLATE'")
        for rule in model.group_mapping:
            _check_attribute("group_mapping", rule.attribute)
        return cls(
            url=url,
            host=host,
            port=model.port,
            tls=_tls(model, configuration) if model.secure_connection else None,
            timeout=model.timeout,
            style=model.bind_dn_type,
            bases=model.bind_dn,
            attribute=model.username_attribute,
            suffix=model.username_suffix,
            search_filter=search_filter,
            home_attribute=home_attribute,
            home_template=template if comma else None,
            mapping=model.group_mapping,
            base_groups=model.base_groups,
        )


def _check_attribute(option: str, name: str) -> None:
    if not _ATTRIBUTE.fullmatch(name):
        raise ValueError(f"{option}: {name!r} is not an LDAP attribute name")


def _dn_parts(text: str) -> list[tuple[str, str]] | None:
    """A DN's parts to compare: (type, value) lower-cased, spaces around them ignored;
    None when ``text`` is not a DN."""
    try:
        return [(kind.lower(), value.lower()) for kind, value, _ in parse_dn(text, strip=True)]
    except LDAPInvalidDnError:
        return None


def _tls(model: LdapAuthenticationModel, configuration: Configuration) -> ldap3.Tls:
    try:
        trust = resolve_trust(configuration, model.tls_trusted_certificates)
    except ValueError as error:
        raise ValueError(f"tls_trusted_certificates: {error}") from None
    if not trust.verify:
        return ldap3.Tls(validate=ssl.CERT_NONE)
    ca_file = str(trust.ca_file) if trust.ca_file is not None else None
    return ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file)


def _error_text(error: BaseException) -> str:
    """ldap3's messages nest tuples' reprs (``"('socket ... refused',)"``): the plain text."""
    text = str(error)
    for _ in range(4):
        if not (text.startswith("(") and text.endswith(")")):
            break
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            break
        if not (isinstance(value, tuple) and value and isinstance(value[0], str)):
            break
        text = value[0]
    return text or type(error).__name__


def _unreachable(settings: Settings, error: BaseException) -> str:
    url, text = settings.url, _error_text(error)
    if isinstance(error, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        detail = text.split("certificate verify failed:", 1)[-1].split("(_ssl", 1)[0].strip()
        return f"{url}: the server certificate is not trusted ({detail})"
    if "doesn't match any name" in text:
        return f"{url}: the server certificate is not for host name {settings.host}"
    if isinstance(error, ConnectionRefusedError):
        return f"{url}: connection refused"
    if isinstance(error, TimeoutError):
        return f"{url}: no answer within {settings.receive_timeout} s (timed out)"
    return f"{url}: {text}"


def _answer(url: str, operation: str, result: Mapping[str, Any] | None) -> str:
    result = result or {}
    text = f"{url}: {operation} answered {result.get('description', 'nothing')}"
    text += f" ({result.get('result', '?')})"
    return text + (f": {result['message']}" if result.get("message") else "")


class _Session:
    """One attempt on one connection; every call blocks (runs on the method's threads)."""

    def __init__(self, settings: Settings, connection: ldap3.Connection) -> None:
        self.settings = settings
        self.connection = connection
        self.denial = ""  # the server's message with its last invalidCredentials (AD's codes)

    def log_in(self, name: str, password: str) -> Entry:
        style = self.settings.style
        if style == "parent":
            return self.parent(name, password)
        if style == "relative":
            return self.relative(name, password)
        if style == "absolute":
            return self.absolute(name, password)
        return self.direct(name, password)

    def invalid(self, detail: str = "") -> Refused:
        detail = detail or (f" ({self.denial})" if self.denial else "")
        return Refused("invalid credentials" + detail)

    def parent(self, name: str, password: str) -> Entry:
        rdn = f"{self.settings.attribute}={escape_rdn(name)}"
        for base in self.settings.bases:
            if self.bind(f"{rdn},{base}", password):
                return self.read(f"{rdn},{base}")
        raise self.invalid()

    def relative(self, name: str, password: str) -> Entry:
        s = self.settings
        condition = f"({s.attribute}={escape_filter_chars(name)})"
        query = f"(&{condition}{s.search_filter})" if s.search_filter else condition
        found = False
        for base in s.bases:
            self.bind_anonymously()
            dn = self.find(base, query)
            found = found or dn is not None
            if dn is not None and self.bind(dn, password):
                return self.read(dn)
        raise self.invalid("" if found else f" (no entry matches {query})")

    def absolute(self, name: str, password: str) -> Entry:
        self.check_under_bases(name)
        if self.bind(name, password):
            return self.read(name)
        raise self.invalid()

    def direct(self, name: str, password: str) -> Entry:
        s = self.settings
        if not self.bind(name + s.suffix, password):
            raise self.invalid()
        # Who bound: the entry read must be that one. A search by username_attribute could
        # find someone else whose attribute happens to equal the typed name (an AD UPN
        # prefix equal to another user's sAMAccountName).
        bound = self.bound_dn()
        if bound is not None:
            return self.read(bound)
        query = f"({s.attribute}={escape_filter_chars(name)})"
        for base in s.bases:
            dn = self.find(base, query)
            if dn is not None:
                return self.read(dn)
        if s.search_filter:
            raise Refused(f"no entry {query} in bind_dn to check search_filter against")
        return Entry(name + s.suffix, {}, found=False)

    def bound_dn(self) -> str | None:
        """The bound identity's DN by "Who am I?" (RFC 4532), when the server answers with
        one (``dn:...``; Active Directory answers ``u:DOMAIN\\name``, which is no DN)."""
        try:
            identity = self.connection.extend.standard.who_am_i()
        except LDAPException:
            return None
        if isinstance(identity, bytes):
            identity = identity.decode("utf-8", "replace")
        if isinstance(identity, str) and identity.startswith("dn:") and len(identity) > 3:
            return identity[3:]
        return None

    def check_under_bases(self, name: str) -> None:
        parts = _dn_parts(name)
        if not parts:
            raise Refused("the login name is not a DN (bind_dn_type absolute)")
        for base in self.settings.bases:
            tail = _dn_parts(base) or []
            if len(parts) > len(tail) and parts[-len(tail) :] == tail:
                return
        if self.settings.bases:
            raise Refused("the login DN is under none of the bind_dn bases")

    def bind(self, dn: str, password: str) -> bool:
        """True when bound; False for invalid credentials; raise for anything else."""
        connection = self.connection
        connection.authentication = ldap3.SIMPLE
        connection.user = dn
        connection.password = password
        try:
            bound = bool(connection.bind(read_server_info=False))
        except (LDAPPasswordIsMandatoryError, LDAPSASLPrepError):
            raise Refused("the password has characters LDAP does not accept") from None
        finally:  # an idle connection keeps no password, neither set nor in its last request
            connection.password = None
            connection.request = None
        if bound:
            return True
        result = connection.result or {}
        if result.get("result") == _INVALID_CREDENTIALS:
            self.denial = str(result.get("message") or "")
            return False
        if result.get("result") == _INVALID_DN_SYNTAX:
            raise Refused(f"the server does not take {dn!r} as a bind name")
        raise Unavailable(_answer(self.settings.url, "bind", result))

    def bind_anonymously(self) -> None:
        connection = self.connection
        connection.authentication = ldap3.ANONYMOUS
        connection.user = None
        connection.password = None
        if not connection.bind(read_server_info=False):
            raise Unavailable(_answer(self.settings.url, "anonymous bind", connection.result))

    def find(self, base: str, query: str) -> str | None:
        """The DN of the one entry under ``base`` matching ``query``, or None."""
        connection = self.connection
        connection.search(
            base,
            query,
            search_scope=ldap3.SUBTREE,
            attributes=ldap3.NO_ATTRIBUTES,
            size_limit=2,
            time_limit=self.settings.receive_timeout,
        )
        result = connection.result or {}
        code = result.get("result")
        entries = [r for r in connection.response or () if r.get("type") == "searchResEntry"]
        if code == _SIZE_LIMIT_EXCEEDED or len(entries) > 1:
            raise Refused(f"several entries under {base} match {query}")
        if code == _NO_SUCH_OBJECT:
            return None
        if code != 0:
            raise Unavailable(_answer(self.settings.url, f"search of {base}", result))
        return str(entries[0]["dn"]) if entries else None

    def read(self, dn: str) -> Entry:
        """The bound user's own entry, checked against ``search_filter``."""
        s = self.settings
        if not s.wanted and not s.search_filter:
            return Entry(dn, {})
        connection = self.connection
        connection.search(
            dn,
            s.search_filter or "(objectClass=*)",
            search_scope=ldap3.BASE,
            attributes=s.wanted or ldap3.NO_ATTRIBUTES,
            time_limit=s.receive_timeout,
        )
        result = connection.result or {}
        if result.get("result") not in (0, _NO_SUCH_OBJECT):
            raise Unavailable(_answer(s.url, f"reading {dn}", result))
        entries = [r for r in connection.response or () if r.get("type") == "searchResEntry"]
        if not entries:
            if s.search_filter:
                raise Refused(f"entry {dn} does not match search_filter {s.search_filter}")
            raise Refused(f"entry {dn} cannot be read with its own bind")
        raw = entries[0].get("raw_attributes") or {}
        attributes = {
            str(key).split(";", 1)[0].lower(): tuple(
                v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values
            )
            for key, values in raw.items()
        }
        return Entry(str(entries[0]["dn"]), attributes)


class Directory:
    """One server for one settings version: its idle connections, and attempts on them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._idle: list[ldap3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def log_in(self, name: str, password: str) -> Entry:
        """Blocking. Raise Refused or Unavailable (whose text names the server)."""
        url = self.settings.url
        for attempt in (1, 2):
            connection, reused = self._take(fresh=attempt > 1)
            keep = False
            try:
                entry = _Session(self.settings, connection).log_in(name, password)
                keep = True
                return entry
            except Refused:
                keep = True
                raise
            except _CONNECTION_ERRORS as error:
                if not (reused and attempt == 1 and not isinstance(error, TimeoutError)):
                    raise Unavailable(_unreachable(self.settings, error)) from None
            except LDAPException as error:
                raise Unavailable(f"{url}: {_error_text(error)}") from None
            finally:
                if keep:
                    self._give_back(connection)
                else:
                    self._discard(connection)
        raise Unavailable(f"{url}: no connection")  # not reached: attempt 2 never continues

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            self._discard(connection)

    def _take(self, fresh: bool) -> tuple[ldap3.Connection, bool]:
        if not fresh:
            with self._lock:
                if self._idle:
                    return self._idle.pop(), True
        s = self.settings
        # A Server per connection: ldap3 keeps per-connection state (current address) on it.
        server = ldap3.Server(
            s.host,
            port=s.port,
            use_ssl=s.tls is not None,
            tls=s.tls,
            get_info=ldap3.NONE,
            connect_timeout=s.timeout,
        )
        connection = ldap3.Connection(
            server,
            receive_timeout=s.receive_timeout,
            raise_exceptions=False,
            read_only=True,
            auto_referrals=False,
            client_strategy=ldap3.SYNC,
        )
        return connection, False

    def _give_back(self, connection: ldap3.Connection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < POOL_SIZE and not connection.closed:
                self._idle.append(connection)
                return
        self._discard(connection)

    @staticmethod
    def _discard(connection: ldap3.Connection) -> None:
        connection.password = None
        connection.request = None
        with contextlib.suppress(Exception):
            connection.unbind()
