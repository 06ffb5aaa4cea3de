"""Authentication method sections (reference 3.2)."""

from __future__ import annotations

from typing import ClassVar, Literal

from ferryd.config.models.base import ComponentModel, option
from ferryd.config.models.types import CsvList, IniBool


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
