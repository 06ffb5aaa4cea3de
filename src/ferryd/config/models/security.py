"""``[security-policies/UUID]`` (reference 3.7): checks run before any authentication method."""

from __future__ import annotations

from typing import ClassVar

from ferryd.config.models.access import SourceIpOption
from ferryd.config.models.base import CHANGED_DOC, CREATED_DOC, SectionModel, option
from ferryd.config.models.types import IniInt, LowerCsvList, Seconds, Text

DEFAULT_SECURITY_POLICY = "DEFAULT-SECURITY-POLICY"
# What SFTPPlus ships in its DEFAULT-SECURITY-POLICY; also ferryd's implicit policy.
SHIPPED_DENY_USERNAMES = ("root", "adm", "admin", "administrator")


class SecurityPolicyModel(SectionModel):
    kind: ClassVar[str] = "security-policies"
    summary: ClassVar[str] = (
        "Deny lists, source address rules and brute-force bans, checked before any "
        "authentication method. Services name theirs with `security_policy`. Without a "
        "[security-policies/DEFAULT-SECURITY-POLICY] section, ferryd uses one with the "
        "defaults below and `deny_usernames = root, adm, admin, administrator`."
    )

    name: Text = option("", doc="Human name.", example="Partner gateway policy")
    description: Text = option("", doc="Free text.", example="Bans after 5 failures")
    deny_usernames: LowerCsvList = option(
        (),
        doc="File-transfer login names refused before any method is asked (case-insensitive).",
        example="root, adm, admin, administrator",
    )
    deny_administrators: LowerCsvList = option(
        (), doc="Administrator names refused at Web Manager logins.", example="admin"
    )
    source_ip_filter: SourceIpOption = option(
        None,
        doc="`allow ADDRESS-OR-CIDR` / `deny ...` per line, first match wins: `allow` skips "
        "every other check of the policy (bans included), `deny` refuses at once; an address "
        "no rule matches goes on to the other checks.",
        example="allow 10.0.0.0/8\ndeny 203.0.113.0/24",
    )
    source_ip_ban_after_count: IniInt = option(
        5,
        doc="Consecutive failed password logins from one address that ban it; 0 never bans.",
        example="10",
        ge=0,
    )
    source_ip_ban_interval: Seconds = option(
        3600.0, doc="Seconds a ban lasts.", example="600", gt=0
    )
    failed_login_delay: Seconds = option(
        1.0,
        doc="Minimum seconds before a refused login is answered, whatever refused it, so "
        "timing tells nothing about which names exist; other clients are not slowed.",
        example="2",
    )
    created: Text = option("", doc=CREATED_DOC, example="2026-11-24")
    changed: Text = option("", doc=CHANGED_DOC, example="2026-11-24")

    def denies_username(self, username: str) -> bool:
        return username.lower() in self.deny_usernames


def shipped_security_policy() -> SecurityPolicyModel:
    return SecurityPolicyModel(name=DEFAULT_SECURITY_POLICY, deny_usernames=SHIPPED_DENY_USERNAMES)
