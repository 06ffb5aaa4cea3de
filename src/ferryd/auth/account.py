"""The account a session runs as: an account section merged with its groups for one peer.

Resolution happens once per login, from the configuration in force at that moment, so an
edited account applies to the next login while open sessions keep what they logged in with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from ferryd.config.configuration import Configuration
from ferryd.config.models import DEFAULT_GROUP, AccountModel, GroupModel
from ferryd.config.models.access import Permissions, VirtualFolder

_SHARED = "${SHARED}"
_USER = "${USER}"
_UNSAFE_IN_PATH = str.maketrans({c: "." for c in '\\/:*?"<>|@'})


@dataclass(frozen=True, slots=True)
class Account:
    """Everything a session needs; paths are absolute real paths."""

    uuid: str
    name: str
    groups: tuple[str, ...]
    home: Path
    create_home: bool
    home_structure: tuple[str, ...]
    permissions: Permissions
    virtual_folders: tuple[VirtualFolder, ...]
    file_write_size: int
    upload_mode: str
    required_credentials: str
    authorized_keys: tuple[str, ...]
    authorized_keys_path: Path | None
    umask: int

    @property
    def primary_group(self) -> str:
        return self.groups[0]

    def refuses(self, credentials_type: str) -> str | None:
        """Why ``required_credentials`` refuses a login of this type, else None."""
        required = self.required_credentials
        if required == "any" or required == credentials_type:
            return None
        return f"{credentials_type} logins not allowed (requires {required})"


class AccountRefused(Exception):
    """The account may not log in now; the message is the reason events carry."""


def path_safe(username: str) -> str:
    """The login name as one path component: SFTPPlus replaces ``\\ / : * ? " < > | @`` by
    ``.``; a name of dots only (``..``) would name a parent folder, so it becomes ``_``s."""
    safe = username.translate(_UNSAFE_IN_PATH)
    return "_" * len(safe) if set(safe) <= {"."} else safe


def _groups(configuration: Configuration, model: AccountModel) -> list[tuple[str, GroupModel]]:
    found = []
    for uuid in model.group or (DEFAULT_GROUP,):
        group = configuration.group(uuid)
        if group is None:
            raise AccountRefused(f"group {uuid!r} does not exist")
        found.append((uuid, group))
    return found


def check_login_allowed(
    configuration: Configuration,
    model: AccountModel,
    peer_address: str,
    now: datetime | None = None,
) -> list[tuple[str, GroupModel]]:
    """The groups that apply to this peer; raise AccountRefused when the login is not allowed."""
    if not model.enabled:
        raise AccountRefused("account is disabled")
    groups = _groups(configuration, model)
    for uuid, group in groups:
        if not group.enabled:
            raise AccountRefused(f"group {uuid!r} is disabled")
    moment = now or datetime.now(UTC)
    if model.expire_datetime is not None and moment >= model.expire_datetime:
        raise AccountRefused(f"account expired on {model.expire_datetime.isoformat()}")
    if model.source_ip_filter is not None:
        if not model.source_ip_filter.permits(peer_address):
            raise AccountRefused(f"source address {peer_address} refused by source_ip_filter")
        return groups
    applying = [
        (uuid, group)
        for uuid, group in groups
        if group.source_ip_filter is None or group.source_ip_filter.permits(peer_address)
    ]
    if not applying:
        raise AccountRefused(f"source address {peer_address} refused by every group's filter")
    return applying


def member_path(group_home: str) -> str:
    """A group's ``home_folder_path`` or ``ssh_authorized_keys_path`` as the template of a
    member's: ``${SHARED}`` gives every member the one path, otherwise each gets ``${USER}``
    below it (unless the path already places ``${USER}``)."""
    text = group_home.strip()
    if text.startswith(_SHARED):
        return text[len(_SHARED) :] or "/"
    if _USER not in text:
        return text.rstrip("/") + "/" + _USER
    return text


def _home(configuration: Configuration, model: AccountModel, primary: GroupModel) -> Path:
    user = path_safe(model.name)
    if model.home_folder_path is not None:
        text = model.home_folder_path.replace(_USER, user)
    else:
        if not primary.home_folder_path.strip():
            raise AccountRefused("no home folder: set home_folder_path on the account or group")
        text = member_path(primary.home_folder_path).replace(_USER, user)
    return configuration.resolve_path(text)


def _keys_path(
    configuration: Configuration, model: AccountModel, primary: GroupModel
) -> Path | None:
    user = path_safe(model.name)
    if model.ssh_authorized_keys_path:
        return configuration.resolve_path(model.ssh_authorized_keys_path.replace(_USER, user))
    text = primary.ssh_authorized_keys_path.strip()
    if not text:
        return None
    return configuration.resolve_path(member_path(text).replace(_USER, user))


def storage_roots(configuration: Configuration, model: AccountModel) -> list[Path]:
    """Every folder the account may write to (home and virtual folder targets), whatever
    its login policy says: what a start-up sweep of stale uploads must visit."""
    try:
        groups = _groups(configuration, model)
        roots = [_home(configuration, model, groups[0][1])]
    except AccountRefused:
        return []
    user = path_safe(model.name)
    for source in [model.virtual_folders or ()] + [g.virtual_folders for _, g in groups]:
        roots.extend(configuration.resolve_path(f.for_user(user).real) for f in source)
    return roots


def resolve_account(
    configuration: Configuration,
    uuid: str,
    model: AccountModel,
    peer_address: str,
    now: datetime | None = None,
) -> Account:
    """Merge account and groups (reference 3.5): scalars from the primary group that applies,
    permission rules and virtual folders from every group, the account's own first."""
    groups = check_login_allowed(configuration, model, peer_address, now)
    primary = groups[0][1]
    user = model.name
    rules = list(model.permissions.rules) if model.permissions else []
    for _, group in groups:
        rules.extend(group.permissions.rules)
    global_set = (model.permissions or primary.permissions).global_set
    folders: dict[str, VirtualFolder] = {}
    for source in [model.virtual_folders or ()] + [g.virtual_folders for _, g in groups]:
        for folder in source:
            real = str(configuration.resolve_path(folder.for_user(path_safe(user)).real))
            folders.setdefault(folder.virtual, VirtualFolder(folder.virtual, real))
    return Account(
        uuid=uuid,
        name=user,
        groups=tuple(g for g, _ in groups),
        home=_home(configuration, model, primary),
        create_home=(
            model.create_home_folder
            if model.create_home_folder is not None
            else primary.create_home_folder
        ),
        home_structure=primary.home_folder_structure,
        permissions=Permissions(global_set, tuple(rules)).for_user(user),
        virtual_folders=tuple(folders.values()),
        file_write_size=(
            model.file_write_size if model.file_write_size is not None else primary.file_write_size
        )
        or 0,
        upload_mode=primary.upload_mode,
        required_credentials=model.required_credentials or primary.required_credentials or "any",
        authorized_keys=model.ssh_authorized_keys_content,
        authorized_keys_path=_keys_path(configuration, model, primary),
        umask=configuration.server.umask_value,
    )


def external_account(
    configuration: Configuration,
    *,
    name: str,
    uuid: str,
    peer_address: str,
    groups: Sequence[str] = (),
    options: Mapping[str, str] | None = None,
) -> Account:
    """An account kept outside the configuration (an LDAP entry, an HTTP service's answer),
    given as account options in their INI text form and resolved exactly like a configured
    one, so groups, permissions and login checks mean the same wherever accounts live.

    Raises AccountRefused naming the option at fault.
    """
    values: dict[str, str] = {"name": name, "group": ", ".join(groups) or DEFAULT_GROUP}
    values.update(options or {})
    try:
        model = AccountModel.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        option = ".".join(str(part) for part in first["loc"]) or "account"
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown option"
        raise AccountRefused(f"{option}: {message}") from None
    return resolve_account(configuration, uuid, model, peer_address)
