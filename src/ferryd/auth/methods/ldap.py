"""``ldap`` authentication: a password login is a simple bind to the directory as the user.

* Passwords only: an SSH key is unknown here, so a later method may accept it. An empty or
  blank password is rejected without contacting the server: LDAP takes a simple bind with an
  empty password as an anonymous bind, which succeeds.
* Terminal for passwords: accept, reject (a wrong password and an unknown name alike:
  "invalid credentials") or failed (unreachable, timed out, untrusted certificate, any other
  server error); never "unknown", so no later method gets a password LDAP refused.
* ``bind_dn_type`` builds the bind DN from the login name, escaped for DNs and filters so a
  name cannot match anyone else: ``parent`` ``ATTRIBUTE=NAME,BASE`` for each base in turn;
  ``relative`` an anonymous subtree search of each base for ``(ATTRIBUTE=NAME)`` (and
  ``search_filter``), then a bind as the entry found; ``absolute`` the name is the DN (under a
  base when bases are set); ``direct-username`` NAME + ``username_suffix`` verbatim (Active
  Directory ``user@domain``), the entry then being searched in the bases as the bound user
  (none found: no attributes, the groups' home applies).
* The user's own entry is then read with the user's bind: it must match ``search_filter``;
  ``home_folder_attribute`` gives the home (``ATTRIBUTE``: the value, an absolute path;
  ``ATTRIBUTE, TEMPLATE``: ``{ATTRIBUTE}`` replaced by the value made safe as one folder
  name); missing or multi-valued refuses the login. ``group_mapping`` rules are tried in
  order against every value of their attribute: a glob must match the whole value, an
  ``m/regex/`` may match any part of it (anchor it with ``^...$``), both ignoring case. The
  groups of every matching rule, then ``base_groups``, make the account's groups, the first
  being the primary; none at all: DEFAULT_GROUP.
* ldap3 is blocking, so every LDAP call runs on this method's own few threads, never on the
  event loop. ``timeout`` bounds connecting and each answer; an attempt, waiting in the queue
  included, gets an answer within twice that.
* A few connections stay open and are rebound for each attempt; a connection that errs is
  discarded, and an attempt whose reused connection was dead (the server restarted) is retried
  once on a new one. A timeout is not retried: the server is there but does not answer.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ferryd.auth.account import AccountRefused, external_account, path_safe
from ferryd.auth.credentials import Credentials, Decision, Outcome
from ferryd.auth.methods.ldap_directory import (
    POOL_SIZE,
    Directory,
    Entry,
    Refused,
    Settings,
    Unavailable,
)
from ferryd.config.configuration import Configuration, Section
from ferryd.config.models.authentications import GroupMappingRule, LdapAuthenticationModel
from ferryd.config.problems import Problem
from ferryd.health.reachability import reachable
from ferryd.lifecycle import Component, Readiness, Reconfigured, State
from ferryd.tls_trust import trust_file


def _is_regex(rule: GroupMappingRule) -> bool:
    return rule.text.partition(",")[2].strip().startswith("m/")


def _groups(settings: Settings, entry: Entry) -> list[str]:
    groups: list[str] = []
    for rule in settings.mapping:
        test = rule.pattern.search if _is_regex(rule) else rule.pattern.fullmatch
        values = entry.attributes.get(rule.attribute.lower(), ())
        if any(test(value) for value in values):
            groups.extend(g for g in rule.groups if g not in groups)
    groups.extend(g for g in settings.base_groups if g not in groups)
    return groups


def _home_options(settings: Settings, entry: Entry) -> dict[str, str]:
    attribute = settings.home_attribute
    if not attribute or not entry.found:
        return {}
    values = entry.attributes.get(attribute.lower(), ())
    if not values:
        raise Refused(f"home_folder_attribute: entry {entry.dn} has no {attribute}")
    if len(values) > 1:
        raise Refused(
            f"home_folder_attribute: {attribute} of {entry.dn} has {len(values)} values, "
            "expected one"
        )
    value = values[0]
    if settings.home_template is None:
        if not Path(value).is_absolute():
            raise Refused(f"home_folder_attribute: {attribute} {value!r} is not an absolute path")
        return {"home_folder_path": value}
    marker = re.compile(re.escape("{" + attribute + "}"), re.IGNORECASE)
    return {"home_folder_path": marker.sub(lambda _: path_safe(value), settings.home_template)}


class LdapAuthentication(Component[LdapAuthenticationModel]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._executor: ThreadPoolExecutor | None = None
        self._directory: Directory | None = None

    @classmethod
    def preflight(cls, section: Section, configuration: Configuration) -> list[Problem]:
        """Options that cannot work (a bind_dn that is no DN, a broken search_filter, an
        attribute name LDAP would refuse, an unreadable CA file) are configuration problems
        naming file, line and option, shown by ``ferryd check`` and refusing a reload,
        instead of failing every login through the method once it is running."""
        model = section.model
        assert isinstance(model, LdapAuthenticationModel)
        try:
            Settings.from_model(model, configuration)
        except ValueError as error:
            option, colon, rest = str(error).partition(": ")
            if not colon or option not in type(model).model_fields:
                option, rest = "", str(error)
            origin = section.options.get(option, section.header) if option else section.header
            return [Problem(origin.path, origin.line, rest, section.title, option or None)]
        return []

    async def start(self) -> None:
        """Check the options (a missing CA file fails the start); the server may be down."""
        # Loads the CA file: off the loop.
        settings = await asyncio.to_thread(Settings.from_model, self.model, self.configuration)
        self._executor = ThreadPoolExecutor(
            POOL_SIZE, thread_name_prefix=f"ldap-{self.context.uuid}"
        )
        self._directory = Directory(settings)
        self.state = State.RUNNING

    async def stop(self, drain_timeout: float) -> None:
        self.state = State.STOPPING
        directory, self._directory = self._directory, None
        executor, self._executor = self._executor, None
        if executor is not None:
            if directory is not None:
                closing = asyncio.wrap_future(executor.submit(directory.close))
                await asyncio.wait({closing}, timeout=max(0.1, min(drain_timeout, 5.0)))
            executor.shutdown(wait=False)
        self.state = State.STOPPED

    @classmethod
    def referenced_files(
        cls, model: LdapAuthenticationModel, configuration: Configuration
    ) -> list[Path]:
        return trust_file(configuration, model.tls_trusted_certificates)

    async def readiness(self) -> Readiness | None:
        if not self.model.readiness_check:
            return None
        return await reachable([(self.model.address, self.model.port)])

    async def reconfigure(self, model: LdapAuthenticationModel) -> Reconfigured:
        """Any change: new settings and new connections; invalid ones are refused (20158) and
        the previous settings stay."""
        # Raises for a bad CA file: the old settings stay.
        settings = await asyncio.to_thread(Settings.from_model, model, self.configuration)
        old, self._directory = self._directory, Directory(settings)
        self.model = model
        if old is not None and self._executor is not None:
            self._executor.submit(old.close)
        return Reconfigured.APPLIED

    async def authenticate(self, credentials: Credentials) -> Decision:
        if credentials.type != "password":
            return Decision(Outcome.UNKNOWN, "ldap authenticates passwords only")
        if not credentials.password.strip():
            return Decision(
                Outcome.REJECT, "empty password (LDAP would take it as an anonymous bind)"
            )
        name = credentials.username
        if not name.strip() or any(ord(c) < 32 or ord(c) == 127 for c in name):
            return Decision(Outcome.REJECT, "the login name is empty or has control characters")
        directory, executor = self._directory, self._executor
        if directory is None or executor is None:
            return Decision(Outcome.FAILED, "the method is not running")
        settings = directory.settings
        try:
            work = executor.submit(directory.log_in, name, credentials.password)
            entry = await asyncio.wait_for(asyncio.wrap_future(work), settings.attempt_limit)
            options = _home_options(settings, entry)
            account = external_account(
                self.configuration,
                # The directory matches names whatever their case (uid, sAMAccountName):
                # Alice and alice are one user, with one home folder and one name in events.
                name=name.lower(),
                uuid=entry.dn,
                peer_address=credentials.peer.address,
                groups=_groups(settings, entry),
                options=options,
            )
        except (Refused, AccountRefused) as refused:
            return Decision(Outcome.REJECT, str(refused))
        except Unavailable as error:
            return Decision(Outcome.FAILED, str(error))
        except TimeoutError:
            limit = f"{settings.attempt_limit:g}"
            return Decision(Outcome.FAILED, f"{settings.url}: no answer within {limit} s")
        except Exception as error:  # a fault of ours or of ldap3: still a decision
            text = f"{settings.url}: {type(error).__name__}: {error}"
            return Decision(Outcome.FAILED, text.replace(credentials.password, "********"))
        return Decision(Outcome.ACCEPT, "", account)
