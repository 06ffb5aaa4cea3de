"""Authentication and security-policy options: parsed at load, and every mistake is refused with
the file, line, section and option, before any login depends on it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ferryd.config.loader import load_configuration
from ferryd.config.models import DEFAULT_SECURITY_POLICY, AccountModel, SecurityPolicyModel
from ferryd.config.models.authentications import (
    HttpAuthenticationModel,
    LdapAuthenticationModel,
)
from ferryd.config.problems import ConfigurationError
from ferryd.server import preflight

WriteIni = Callable[..., Path]


def problems_of(config_dir: Path) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        load_configuration(config_dir)
    return [str(p) for p in caught.value.problems]


def test_implicit_default_policy_is_the_shipped_one(write_ini: WriteIni, config_dir: Path) -> None:
    write_ini()
    section = load_configuration(config_dir).sections[
        ("security-policies", DEFAULT_SECURITY_POLICY)
    ]
    model = section.model
    assert isinstance(model, SecurityPolicyModel)
    assert model.deny_usernames == ("root", "adm", "admin", "administrator")
    assert (model.source_ip_ban_after_count, model.source_ip_ban_interval) == (5, 3600.0)


def test_an_explicit_default_policy_replaces_the_implicit_one(
    write_ini: WriteIni, config_dir: Path
) -> None:
    write_ini("""
        [security-policies/DEFAULT-SECURITY-POLICY]
        deny_usernames = Guest
        source_ip_ban_after_count = 0
    """)
    model = (
        load_configuration(config_dir)
        .sections[("security-policies", DEFAULT_SECURITY_POLICY)]
        .model
    )
    assert isinstance(model, SecurityPolicyModel)
    assert model.deny_usernames == ("guest",), "names are compared in lower case"
    assert model.denies_username("GUEST") and not model.denies_username("root")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "[security-policies/p]\nsource_ip_ban_after_count = -1",
            "source_ip_ban_after_count: Input should be greater than or equal to 0",
        ),
        ("[security-policies/p]\nsource_ip_filter = permit 10.0.0.1", "expected 'allow"),
        ("[security-policies/p]\nsource_ip_ban_interval = 0", "greater than 0"),
        (
            "[security-policies/p]\nfailed_login_delay = nan",
            "failed_login_delay: expected a finite number of seconds, got 'nan'",
        ),
        (
            "[authentications/b]\ntype = ip-time-ban\nban_interval = inf",
            "ban_interval: expected a finite number of seconds, got 'inf'",
        ),
        (
            "[authentications/h]\ntype = http\nurl = ftp://id.example",
            "URL 1 of 1 is not an http:// or https:// URL",
        ),
        ("[authentications/h]\ntype = http\nurl = https://a, b", "URL 2 of 2 is not"),
        (
            "[authentications/h]\ntype = http\nurl = https://a\nheaders = X: 1\n  no colon here",
            "header line 2 is not 'Name: value'",
        ),
        ("[authentications/l]\ntype = ldap\naddress = ldap\nbind_dn_type = upn", "unexpected"),
        (
            "[authentications/l]\ntype = ldap\naddress = ldap\ngroup_mapping = ou, m/(/, g",
            "invalid regular expression",
        ),
        (
            "[authentications/l]\ntype = ldap\naddress = ldap\ngroup_mapping = ou, x*",
            "expected 'ATTRIBUTE, MATCH, GROUP-UUID",
        ),
        ("[authentications/l]\ntype = ldap", "address: missing required option"),
        ("[authentications/a]\ntype = anonymous", "anonymous_account_uuid: missing"),
        ("[authentications/b]\ntype = ip-time-ban\nban_after_count = x", "whole number"),
    ],
)
def test_bad_values_name_the_option_and_line(
    write_ini: WriteIni, config_dir: Path, section: str, message: str
) -> None:
    path = write_ini("\n" + section + "\n")
    found = problems_of(config_dir)
    assert len(found) == 1, found
    assert found[0].startswith(f"{path}:"), found
    assert message in found[0], found


@pytest.mark.parametrize(
    "option",
    [
        "url = htps://partner:s3cr3t-token@id.example",
        "url = https://id.example\nheaders = Authorization Bearer s3cr3t-token",
    ],
)
def test_a_refused_url_or_header_is_not_quoted_since_it_may_hold_a_secret(
    write_ini: WriteIni, config_dir: Path, option: str
) -> None:
    write_ini(f"\n[authentications/h]\ntype = http\n{option}\n")
    found = problems_of(config_dir)
    assert len(found) == 1, found
    assert "s3cr3t-token" not in found[0], found
    assert "[authentications/h]" in found[0] or "authentications/h" in found[0], found


@pytest.mark.parametrize(
    ("section", "missing"),
    [
        (
            "[services/s]\ntype = ssh\nport = 0\nsecurity_policy = strict",
            "[services/s] security_policy: no [security-policies/strict] section",
        ),
        (
            "[services/s]\ntype = ssh\nport = 0\nauthentications = nowhere",
            "[services/s] authentications: no [authentications/nowhere] section",
        ),
        (
            "[authentications/a]\ntype = anonymous\nanonymous_account_uuid = ghost",
            "[authentications/a] anonymous_account_uuid: no [accounts/ghost] section",
        ),
        (
            "[authentications/l]\ntype = ldap\naddress = x\nbase_groups = partners",
            "[authentications/l] base_groups: no [groups/partners] section",
        ),
        (
            "[authentications/l]\ntype = ldap\naddress = x\ngroup_mapping = ou, sales, sales-grp",
            "[authentications/l] group_mapping: no [groups/sales-grp] section",
        ),
        (
            "[authentications/x]\ntype = application\nallowed_groups = vip",
            "[authentications/x] allowed_groups: no [groups/vip] section",
        ),
    ],
)
def test_references_to_missing_sections_are_refused(
    write_ini: WriteIni, config_dir: Path, section: str, missing: str
) -> None:
    write_ini("\n" + section + "\n")
    found = problems_of(config_dir)
    assert any(missing in problem for problem in found), found


def test_group_mapping_rules_accept_globs_and_regexes_with_commas() -> None:
    model = LdapAuthenticationModel.model_validate(
        {
            "type": "ldap",
            "address": "ldap.example",
            "group_mapping": "memberOf, m/^cn=sftp,ou=groups/, sftp, audit\n"
            "  departmentNumber, FIN*, finance",
        }
    )
    first, second = model.group_mapping
    assert (first.attribute, first.groups) == ("memberOf", ("sftp", "audit"))
    assert first.pattern.search("CN=SFTP,OU=Groups,dc=example")
    assert (second.attribute, second.groups) == ("departmentNumber", ("finance",))
    assert second.pattern.fullmatch("finance-emea") and not second.pattern.fullmatch("hr")


def test_http_headers_and_urls_are_parsed_in_order() -> None:
    model = HttpAuthenticationModel.model_validate(
        {
            "type": "http",
            "url": "https://a.example/auth, http://b.example:8080/auth",
            "headers": "X-Api-Key: k1\n  X-Tenant:  acme ",
        }
    )
    assert model.url == ("https://a.example/auth", "http://b.example:8080/auth")
    assert model.headers == (("X-Api-Key", "k1"), ("X-Tenant", "acme"))


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("[groups/g]\npermissions = inherit", "inherit"),
        ("[groups/g]\npermissions =", "expected permissions such as allow-full-control"),
        ("[groups/g]\nvirtual_folders = inherit", "virtual_folders"),
        ("[security-policies/p]\nsource_ip_filter = inherit", "expected 'allow"),
        ("[groups/g]\nsource_ip_filter = inherit", "expected 'allow"),
    ],
)
def test_groups_and_policies_have_nothing_to_inherit(
    write_ini: WriteIni, config_dir: Path, section: str, message: str
) -> None:
    """`inherit` (or nothing) there would silently mean full control or no filter."""
    write_ini("\n" + section + "\n")
    found = problems_of(config_dir)
    assert len(found) == 1 and message in found[0], found


def test_an_account_inherits_with_inherit_or_nothing(write_ini: WriteIni, config_dir: Path) -> None:
    write_ini("""
        [accounts/a]
        name = a
        permissions = inherit
        virtual_folders =
        source_ip_filter = Inherit
    """)
    model = load_configuration(config_dir).sections[("accounts", "a")].model
    assert isinstance(model, AccountModel)
    assert (model.permissions, model.virtual_folders, model.source_ip_filter) == (None,) * 3


@pytest.mark.parametrize(
    ("options", "option", "message"),
    [
        ("bind_dn = garbage", "bind_dn", "bind_dn: 'garbage' is not a DN"),
        ("bind_dn = dc=x\nsearch_filter = (broken", "search_filter", "search_filter: '(broken'"),
        ("bind_dn = dc=x\nusername_attribute = no spaces", "username_attribute", "'no spaces'"),
    ],
)
def test_ldap_options_that_cannot_work_are_configuration_problems(
    write_ini: WriteIni, config_dir: Path, options: str, option: str, message: str
) -> None:
    """Found by ``ferryd check`` and refusing a reload, not by every later login."""
    path = write_ini(f"\n[authentications/l]\ntype = ldap\naddress = ldap\n{options}\n")
    found = [str(p) for p in preflight(load_configuration(config_dir))]
    assert len(found) == 1, found
    assert found[0].startswith(f"{path}:"), found
    assert f"[authentications/l] {option}" in found[0], found
    assert message in found[0], found
