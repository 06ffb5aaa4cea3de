"""``local-file`` authentication: accounts and groups kept in their own file, reloaded live.

Partners' accounts often belong to other tooling (a provisioning script, an export) that
should not touch server.ini, and must change without a restart. The file, in the server.ini
dialect, is read at start and again whenever it changes, noticed three ways: a watch on its
folder (a rename-over, which is how tools and editors save atomically, is only seen there), a
poll every ``changes_poll_interval`` for filesystems that send no notification (network
shares), and a stat at each login so that a login right after an edit sees it. A file that
does not load is reported (20259) and the last good accounts stay in force. Logins are checked
exactly as server.ini accounts are, against a view of the configuration holding the file's
sections.

A file that cannot be loaded at start does not stop the method: it starts knowing no account
(logins pass to the next method) and the accounts arrive when the file is fixed, so a typo in
a partners file never takes the server's own accounts down with it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from pathlib import Path

from ferryd.auth.credentials import Credentials, Decision, Outcome
from ferryd.auth.methods.application import authenticate_configured
from ferryd.auth.passwords import is_hash
from ferryd.auth.plain_passwords import HashedPassword, hash_plain_passwords
from ferryd.config import loader
from ferryd.config.configuration import Configuration, Section
from ferryd.config.models import DEFAULT_GROUP, AccountModel
from ferryd.config.models.authentications import LocalFileAuthenticationModel
from ferryd.config.problems import ConfigurationError, Problem
from ferryd.config.watch import FileWatch, Stamp, file_stamp
from ferryd.lifecycle import Component, ComponentContext, Reconfigured, State

Key = tuple[str, str]
Sections = Mapping[Key, Section]

_DEFAULT_GROUP_KEY: Key = ("groups", DEFAULT_GROUP)


def identities_view(configuration: Configuration, sections: Sections) -> Configuration:
    """The configuration as a login through the file sees it: the file's accounts and groups,
    plus the main DEFAULT_GROUP when the file defines none (accounts naming no group use it)."""
    view = dict(sections)
    main_default = configuration.sections.get(_DEFAULT_GROUP_KEY)
    if _DEFAULT_GROUP_KEY not in view and main_default is not None:
        view[_DEFAULT_GROUP_KEY] = main_default
    return dataclasses.replace(configuration, sections=view)


def _plain_password(section: Section) -> bool:
    model = section.model
    return isinstance(model, AccountModel) and bool(model.password) and not is_hash(model.password)


@dataclasses.dataclass(frozen=True, slots=True)
class _Loaded:
    sections: dict[Key, Section]
    fingerprint: str
    hashed: list[HashedPassword]
    stamp: Stamp | None  # of the file as finally read, when ferryd rewrote it


def _load(path: Path, configuration: Configuration, hash_plain: bool) -> _Loaded:
    """Load the file, first storing hashes in place of plain-text passwords when allowed;
    blocking (file I/O, hashing). Raises ConfigurationError."""
    sections, fingerprint = loader.load_identities(path)
    plain = [s for s in sections.values() if _plain_password(s)]
    if not hash_plain or not plain:
        return _Loaded(sections, fingerprint, [], None)
    hashed = hash_plain_passwords(
        identities_view(configuration, sections),
        " and set external_management = yes",
    )
    stamp = file_stamp(path)
    sections, fingerprint = loader.load_identities(path)
    return _Loaded(sections, fingerprint, hashed, stamp)


class LocalFileAuthentication(Component[LocalFileAuthenticationModel]):
    def __init__(self, model: LocalFileAuthenticationModel, context: ComponentContext) -> None:
        super().__init__(model, context)
        self._path = Path()
        self._sections: Sections = {}
        self._fingerprint: str | None = None  # of the accounts in force
        self._failed = False  # the last read was refused (the next good one is announced)
        self._stamp: Stamp | None = None  # of the file as last read, good or not
        self._lock = asyncio.Lock()
        self._watch: FileWatch | None = None

    async def start(self) -> None:
        self._path = self.configuration.resolve_path(self.model.path)
        await self._refresh(force=True)
        self._watch = FileWatch(
            lambda: [self._path], self._refresh, self.model.changes_poll_interval, str(self._path)
        )
        self._watch.start()
        self.state = State.RUNNING

    async def stop(self, drain_timeout: float) -> None:
        self.state = State.STOPPING
        if self._watch is not None:
            await self._watch.stop()
        self.state = State.STOPPED

    async def reconfigure(self, model: LocalFileAuthenticationModel) -> Reconfigured:
        """Another file restarts the method; the rest applies live."""
        if self.configuration.resolve_path(model.path) != self._path:
            return Reconfigured.NEEDS_RESTART
        old, self.model = self.model, model
        if self._watch is not None:
            await self._watch.set_poll_interval(model.changes_poll_interval)
        if model.external_management != old.external_management:
            async with self._lock:
                self._fingerprint = None  # read again: plain-text passwords may now be hashed
            await self._refresh(force=True)
        return Reconfigured.APPLIED

    async def authenticate(self, credentials: Credentials) -> Decision:
        await self._refresh()
        view = identities_view(self.configuration, self._sections)
        found = view.account_named(credentials.username)
        if found is None:
            return Decision(Outcome.UNKNOWN, f"no such account in {self._path}")
        decision = await authenticate_configured(view, credentials)
        unhashable = decision.reason.startswith("unsupported password hash scheme")
        if unhashable and _plain_password(found[0]):
            where = "externally managed, " if self.model.external_management else ""
            return dataclasses.replace(
                decision,
                reason=f"{decision.reason} ({where}{self._path} must hold a password hash)",
            )
        return decision

    # -- reading the file ------------------------------------------------------------------

    async def _refresh(self, force: bool = False) -> None:
        """Read the file again if it changed since it was last read (or when forced)."""
        stamp = await asyncio.to_thread(file_stamp, self._path)
        if stamp == self._stamp and not force:
            return
        # Shielded: a login given up half-way must not leave a reload half-done.
        await asyncio.shield(self._reread(force))

    async def _reread(self, force: bool) -> None:
        async with self._lock:
            stamp = await asyncio.to_thread(file_stamp, self._path)
            if stamp == self._stamp and not force:
                return  # another caller read this version while we waited
            await self._read(stamp)

    async def _read(self, stamp: Stamp | None) -> None:
        """Read the file last seen as ``stamp``, recorded only once the read has an outcome
        so that a read cancelled half-way (at stop) does not hide the change."""
        hash_plain = not self.model.external_management
        try:
            loaded = await asyncio.to_thread(_load, self._path, self.configuration, hash_plain)
        except ConfigurationError as error:
            self._stamp = stamp
            self._refused(error.problems)
            return
        except Exception as error:  # whatever it is, the accounts in force must survive it
            self._stamp = stamp
            self._refused([Problem(str(self._path), 0, f"cannot load: {error}")])
            return
        for entry in loaded.hashed:
            self.emit("20197", account_name=entry.account_name, path=entry.path, line=entry.line)
        # Our own rewrite is not a change to read again.
        self._stamp = loaded.stamp if loaded.stamp is not None else stamp
        if loaded.fingerprint == self._fingerprint and not self._failed:
            return
        self._sections = loaded.sections
        self._fingerprint = loaded.fingerprint
        self._failed = False
        kinds = [s.kind for s in loaded.sections.values()]
        self.emit(
            "20258",
            method_name=self.ref.name,
            path=str(self._path),
            accounts=kinds.count("accounts"),
            groups=kinds.count("groups"),
        )

    def _refused(self, problems: list[Problem]) -> None:
        self._failed = True
        first = problems[0]
        self.emit(
            "20259",
            method_name=self.ref.name,
            path=str(self._path),
            line=first.line,
            problem=str(first),
            problems=[str(p) for p in problems],
        )
