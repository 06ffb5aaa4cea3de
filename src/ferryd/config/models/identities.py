"""Accounts, groups and administrators: data read by authentication, not running components.

Only the options ferryd implements are accepted; anything else is refused with its line, so
an administrator never believes an option is in force when it is not.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Literal

from ferryd.config.models.access import (
    FULL_CONTROL,
    CredentialsOption,
    DateTimeOption,
    InheritBool,
    InheritPermissions,
    InheritSourceIp,
    InheritText,
    InheritVirtualFolders,
    PermissionsOption,
    SizeOption,
    SourceIpOption,
    VirtualFoldersOption,
)
from ferryd.config.models.base import CHANGED_DOC, CREATED_DOC, SectionModel, option
from ferryd.config.models.types import CsvList, IniBool, LineList, Text

DEFAULT_GROUP = "DEFAULT_GROUP"


class AccountModel(SectionModel):
    kind: ClassVar[str] = "accounts"
    type_name: ClassVar[str] = "application"
    summary: ClassVar[str] = "A file-transfer account (partner or application)."

    name: Text = option(
        doc="Login name (at most 150 characters).", example="acme", min_length=1, max_length=150
    )
    type: Literal["application"] = option(
        "application",
        doc="`application`: defined here, with its own password.",
        example="application",
    )
    enabled: IniBool = option(True, doc="`no` refuses every login of the account.", example="no")
    group: CsvList = option(
        (DEFAULT_GROUP,),
        doc="Group UUIDs, primary first; the account takes its defaults from them.",
        example="partners, DEFAULT_GROUP",
    )
    description: Text = option("", doc="Free text.", example="ACME Corp. invoices")
    email: CsvList = option((), doc="Contact addresses.", example="ops@acme.example")
    password: Text = option(
        "",
        doc="Password hash: argon2id (what ferryd writes), `$6$`/`$5$` SHA-crypt, "
        "`$pbkdf2-sha256$`/`$pbkdf2-sha512$`. A plain-text value is replaced by its argon2id "
        "hash in the file when ferryd loads it (event 20197). Empty: no password login. "
        "A hash costing more than about a second per attempt (SHA-crypt over 1,000,000 "
        "rounds, PBKDF2 over 5,000,000, argon2id over 1 GiB or 32 passes) refuses logins.",
        example="$6$rounds=80000$SALT$HASH",
    )
    home_folder_path: InheritText = option(
        None,
        doc="Home folder (the jail); `inherit` or empty takes the primary group's.",
        example="/srv/sftp/acme",
    )
    create_home_folder: InheritBool = option(
        None,
        doc="Create the home folder at login when missing; `inherit` takes the group's.",
        example="yes",
    )
    permissions: InheritPermissions = option(
        None,
        doc="First line: global permissions; next lines `path-expression, permission...` "
        "(see the permissions guide). The account's global set replaces the primary group's "
        "and its path rules are tried before the groups'. `inherit`: the groups' only.",
        example="allow-read, allow-list\n/inbox/*, allow-full-control",
    )
    virtual_folders: InheritVirtualFolders = option(
        None,
        doc="`/virtual/path, /real/path` per line, added to the groups' virtual folders.",
        example="/shared, /srv/shared",
    )
    file_write_size: SizeOption = option(
        None,
        doc="Largest file, in bytes, an upload may write (0: no limit; `inherit`: group's).",
        example="1073741824",
    )
    required_credentials: CredentialsOption = option(
        None,
        doc="`password`, `ssh-key` or `any`; `inherit` takes the primary group's. Holds "
        "whichever method vouched for the account (LDAP, HTTP and anonymous too).",
        example="ssh-key",
    )
    ssh_authorized_keys_content: LineList = option(
        (),
        doc="OpenSSH public key lines (`ssh-ed25519 AAAA... comment`), one per line.",
        example="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA... acme@laptop",
    )
    ssh_authorized_keys_path: Text = option(
        "",
        doc="An authorized_keys file, or a folder whose every file is read; read at each "
        "login. A line that is not a usable key is skipped, as OpenSSH does, and a refused "
        "login names each skipped file and line. A private key found there fails the login.",
        example="/etc/ferryd/keys/acme.pub",
    )
    source_ip_filter: InheritSourceIp = option(
        None,
        doc="`allow ADDRESS-OR-CIDR` / `deny ADDRESS-OR-CIDR` per line; the first match "
        "wins and an unmatched address is refused. Overrides the groups' filters.",
        example="allow 192.0.2.0/24\ndeny 0.0.0.0/0",
    )
    expire_datetime: DateTimeOption = option(
        None,
        doc="From this moment (ISO-8601; no offset means UTC) logins are refused.",
        example="2026-12-31 18:00",
    )
    created: Text = option("", doc=CREATED_DOC, example="2026-11-24")
    changed: Text = option("", doc=CHANGED_DOC, example="2026-11-24")

    @property
    def primary_group(self) -> str:
        return self.group[0] if self.group else DEFAULT_GROUP

    def references(self) -> Iterable[tuple[str, str, Iterable[str]]]:
        return [("group", "groups", self.group)]


class GroupModel(SectionModel):
    kind: ClassVar[str] = "groups"
    summary: ClassVar[str] = (
        "Defaults shared by accounts. `[groups/DEFAULT_GROUP]` always exists (created empty "
        "when the file has none)."
    )

    name: Text = option("", doc="Human name.", example="partners")
    enabled: IniBool = option(True, doc="`no` disables every account in the group.", example="no")
    description: Text = option("", doc="Free text.", example="External partners")
    home_folder_path: Text = option(
        "",
        doc="Home folder of members: `${USER}` is the login name (appended as `/${USER}` "
        "when absent); a `${SHARED}` prefix gives every member the same folder. Relative "
        "paths are relative to the configuration folder. Empty: members need their own.",
        example="/srv/sftp/${USER}",
    )
    create_home_folder: IniBool = option(
        False,
        doc="Create a missing home folder (and virtual folder targets) at login.",
        example="yes",
    )
    home_folder_structure: LineList = option(
        (),
        doc="Folders, relative to the home folder, created at each login when missing.",
        example="inbox\noutbox/archive",
    )
    permissions: PermissionsOption = option(
        FULL_CONTROL,
        doc="First line: global permissions (`allow-full-control`, `deny-full-control`, "
        "`allow-read`, `allow-list`, `allow-traverse`, `allow-create-folder`, `allow-write`, "
        "`allow-rename`, `allow-delete-file`, `allow-delete-folder`, `allow-set-attributes`, "
        "`deny-...`); next lines `path-expression, permission...` where the expression is a "
        "glob on the virtual path, `m/regex/` or `e/regex that must not match/`. The first "
        "matching line replaces the global set; deny beats allow.",
        example="allow-list, allow-traverse\n/inbox/*, allow-full-control",
    )
    virtual_folders: VirtualFoldersOption = option(
        (),
        doc="`/virtual/path, /real/path` per line (`${USER}` allowed in the real path).",
        example="/shared, /srv/shared",
    )
    file_write_size: SizeOption = option(
        0, doc="Largest file, in bytes, an upload may write; 0: no limit.", example="1048576"
    )
    required_credentials: CredentialsOption = option(
        "any",
        doc="`password`, `ssh-key` or `any` (either is enough). Holds for members whichever "
        "method vouched for them (LDAP, HTTP and anonymous too).",
        example="ssh-key",
    )
    ssh_authorized_keys_path: Text = option(
        "",
        doc="Folder holding one authorized_keys file per member (`${USER}` appended unless "
        "present), or with a `${SHARED}` prefix one file for all.",
        example="/etc/ferryd/keys/${USER}",
    )
    source_ip_filter: SourceIpOption = option(
        None,
        doc="`allow`/`deny` ADDRESS-OR-CIDR per line: the group applies only to peers it "
        "allows; a login with no group left is refused.",
        example="allow 10.0.0.0/8",
    )
    upload_mode: Literal["atomic", "atomic-resumable", "direct"] = option(
        "atomic",
        doc="`atomic`: uploads go to a hidden temporary file published on a successful "
        "close; `atomic-resumable`: the same, but an interrupted upload is published so the "
        "client can resume it; `direct`: write the final file in place.",
        example="atomic-resumable",
    )
    created: Text = option("", doc=CREATED_DOC, example="2026-11-24")
    changed: Text = option("", doc=CHANGED_DOC, example="2026-11-24")


class AdministratorModel(SectionModel):
    kind: ClassVar[str] = "administrators"
    summary: ClassVar[str] = "A person who manages ferryd (Web Manager, management API)."

    name: Text = option(doc="Login name.", example="admin", min_length=1, max_length=150)
    enabled: IniBool = option(True, doc="`no` refuses every login.", example="no")
    description: Text = option("", doc="Free text.", example="Operations team")
    password: Text = option("", doc="Password hash (argon2id).", example="$argon2id$...")
    roles: CsvList = option(
        ("DEFAULT-ROLE",), doc="Role UUIDs, primary first.", example="DEFAULT-ROLE"
    )
    created: Text = option("", doc=CREATED_DOC, example="2026-11-24")
    changed: Text = option("", doc=CHANGED_DOC, example="2026-11-24")
