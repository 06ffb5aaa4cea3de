"""Accounts, groups and administrators: data read by authentication, not running components.

Only the options ferryd implements are accepted; anything else is refused with its line, so
an administrator never believes an option is in force when it is not.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from ferryd.config.models.base import SectionModel, option
from ferryd.config.models.types import CsvList, IniBool, Text

DEFAULT_GROUP = "DEFAULT_GROUP"

_CREATED = "When the section was created (informative)."
_CHANGED = "When the section last changed (informative)."


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
        doc="Password hash (argon2id as written by ferryd); empty: password login impossible.",
        example="$argon2id$v=19$m=65536,t=3,p=4$...",
    )
    created: Text = option("", doc=_CREATED, example="2026-11-24")
    changed: Text = option("", doc=_CHANGED, example="2026-11-24")

    @property
    def primary_group(self) -> str:
        return self.group[0] if self.group else DEFAULT_GROUP


class GroupModel(SectionModel):
    kind: ClassVar[str] = "groups"
    summary: ClassVar[str] = (
        "Defaults shared by accounts. `[groups/DEFAULT_GROUP]` always exists (created empty "
        "when the file has none)."
    )

    name: Text = option("", doc="Human name.", example="partners")
    enabled: IniBool = option(True, doc="`no` disables every account in the group.", example="no")
    description: Text = option("", doc="Free text.", example="External partners")
    created: Text = option("", doc=_CREATED, example="2026-11-24")
    changed: Text = option("", doc=_CHANGED, example="2026-11-24")


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
    created: Text = option("", doc=_CREATED, example="2026-11-24")
    changed: Text = option("", doc=_CHANGED, example="2026-11-24")
