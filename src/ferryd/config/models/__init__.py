"""Typed models for every section ferryd understands, keyed by ``(kind, type)``.

Kinds without a ``type`` option (groups, administrators) use the empty string as type;
accounts default to ``application`` as in SFTPPlus.
"""

from __future__ import annotations

from ferryd.config.models.authentications import (
    AnonymousAuthenticationModel,
    ApplicationAuthenticationModel,
    DenyUsernameAuthenticationModel,
    HttpAuthenticationModel,
    IpTimeBanAuthenticationModel,
    LdapAuthenticationModel,
    LocalFileAuthenticationModel,
)
from ferryd.config.models.base import (
    ComponentModel,
    EventHandlerModel,
    SectionModel,
    changed_options,
)
from ferryd.config.models.handlers import LocalFileHandlerModel, StandardStreamHandlerModel
from ferryd.config.models.identities import (
    DEFAULT_GROUP,
    AccountModel,
    AdministratorModel,
    GroupModel,
)
from ferryd.config.models.security import DEFAULT_SECURITY_POLICY, SecurityPolicyModel
from ferryd.config.models.server import ServerModel
from ferryd.config.models.services import ServiceModel, SshServiceModel

MODELS: dict[tuple[str, str], type[SectionModel]] = {
    ("event-handlers", "local-file"): LocalFileHandlerModel,
    ("event-handlers", "standard-stream"): StandardStreamHandlerModel,
    ("authentications", "application"): ApplicationAuthenticationModel,
    ("authentications", "local-file"): LocalFileAuthenticationModel,
    ("authentications", "http"): HttpAuthenticationModel,
    ("authentications", "ldap"): LdapAuthenticationModel,
    ("authentications", "anonymous"): AnonymousAuthenticationModel,
    ("authentications", "deny-username"): DenyUsernameAuthenticationModel,
    ("authentications", "ip-time-ban"): IpTimeBanAuthenticationModel,
    ("services", "ssh"): SshServiceModel,
    ("accounts", "application"): AccountModel,
    ("groups", ""): GroupModel,
    ("administrators", ""): AdministratorModel,
    ("security-policies", ""): SecurityPolicyModel,
}

# Kinds whose sections carry a ``type`` option choosing the model.
TYPED_KINDS = frozenset(["services", "authentications", "event-handlers", "accounts"])
# Kinds whose sections are running components (everything else is data).
COMPONENT_KINDS = ("event-handlers", "authentications", "services")
# Kinds SFTPPlus has that ferryd does not implement yet: refused with a clear message.
FUTURE_KINDS = frozenset(
    [
        "roles",
        "transfers",
        "locations",
        "resources",
        "vault-items",
        "cluster-nodes",
    ]
)
KNOWN_KINDS = frozenset(k for k, _ in MODELS) | TYPED_KINDS


def types_of(kind: str) -> list[str]:
    return sorted(t for k, t in MODELS if k == kind)


__all__ = [
    "COMPONENT_KINDS",
    "DEFAULT_GROUP",
    "DEFAULT_SECURITY_POLICY",
    "FUTURE_KINDS",
    "KNOWN_KINDS",
    "MODELS",
    "TYPED_KINDS",
    "AccountModel",
    "AdministratorModel",
    "ApplicationAuthenticationModel",
    "ComponentModel",
    "EventHandlerModel",
    "GroupModel",
    "LocalFileHandlerModel",
    "SectionModel",
    "SecurityPolicyModel",
    "ServerModel",
    "ServiceModel",
    "SshServiceModel",
    "StandardStreamHandlerModel",
    "changed_options",
    "types_of",
]
