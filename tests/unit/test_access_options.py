"""Account, group and service options: parsing, clear errors, and how groups combine."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ferryd.auth.account import Account, AccountRefused, path_safe, resolve_account
from ferryd.config.configuration import Configuration
from ferryd.config.loader import load_configuration
from ferryd.config.models.access import (
    VERBS,
    PathRule,
    Permissions,
    PermissionSet,
    parse_permission_set,
)
from ferryd.config.models.services import ssh_algorithms
from ferryd.config.problems import ConfigurationError

WriteIni = Callable[..., Path]


def problems_of(config_dir: Path) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        load_configuration(config_dir)
    return [str(p) for p in caught.value.problems]


def account(
    configuration: Configuration, name: str, peer: str = "192.0.2.1", now: datetime | None = None
) -> Account:
    found = configuration.account_named(name)
    assert found is not None
    section, model = found
    return resolve_account(configuration, section.uuid, model, peer, now)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("permissions", "allow-fly", "unknown permission 'allow-fly'"),
        ("permissions", "allow-read\n    /inbox", "line 2 of the value: expected"),
        ("permissions", "allow-read\n    m/[/, allow-read", "bad regular expression"),
        ("source_ip_filter", "allow 10.0.0.300", "'10.0.0.300' is not an IP address"),
        ("source_ip_filter", "permit 10.0.0.0/8", "expected 'allow ADDRESS-OR-CIDR'"),
        ("virtual_folders", "shared, /srv/shared", "must be absolute"),
        ("virtual_folders", "/a/../b, /srv", "must be absolute, normalised"),
        ("expire_datetime", "next tuesday", "expected a date such as 2026-12-31"),
        ("required_credentials", "password, ssh-key", "not implemented yet"),
        ("required_credentials", "otp", "expected one of any, password, ssh-key"),
        ("file_write_size", "-1", "expected zero or more bytes"),
    ],
)
def test_bad_account_values_name_file_line_section_and_option(
    write_ini: WriteIni, config_dir: Path, option: str, value: str, message: str
) -> None:
    write_ini(f"""
[accounts/a1]
name = alice
{option} = {value}
""")
    (problem,) = problems_of(config_dir)
    assert problem.startswith(f"{config_dir / 'server.ini'}:10: [accounts/a1] {option}: ")
    assert message in problem


def test_unknown_ssh_algorithm_is_a_configuration_error(
    write_ini: WriteIni, config_dir: Path
) -> None:
    write_ini("""
[services/s1]
type = ssh
port = 10022
ssh_cipher_list = aes128-gcm@openssh.com, rot13
""")
    (problem,) = problems_of(config_dir)
    assert "[services/s1] ssh_cipher_list: unknown SSH algorithm 'rot13'" in problem


def test_explicit_algorithm_list_needs_a_cipher_a_mac_and_a_key_exchange() -> None:
    with pytest.raises(ValueError, match="at least one key exchange and one MAC"):
        ssh_algorithms(("aes128-gcm@openssh.com",))
    chosen = ssh_algorithms(("curve25519-sha256", "aes128-ctr", "hmac-sha2-256"))
    assert (chosen.kex, chosen.ciphers, chosen.macs) == (
        ("curve25519-sha256",),
        ("aes128-ctr",),
        ("hmac-sha2-256",),
    )


def test_secure_offers_no_sha1_cbc_or_small_groups() -> None:
    secure = ssh_algorithms(("secure",))
    everything = " ".join(secure.kex + secure.ciphers + secure.macs + secure.signatures)
    for weak in ("sha1", "cbc", "group1-", "arcfour", "3des", "ssh-rsa ", "md5"):
        assert weak not in everything + " "
    assert "ssh-rsa" not in secure.signatures


def test_deny_beats_allow_and_legacy_words_expand() -> None:
    assert not parse_permission_set(["allow-full-control", "deny-write"]).permits("write")
    assert parse_permission_set(["read"]) == PermissionSet(
        frozenset({"read", "list", "traverse"}), frozenset()
    )


def test_groups_combine_primary_scalars_and_every_groups_rules(
    write_ini: WriteIni, config_dir: Path
) -> None:
    write_ini("""
[groups/primary]
home_folder_path = /srv/sftp
permissions = allow-list, allow-read
upload_mode = atomic-resumable
file_write_size = 1000

[groups/extra]
home_folder_path = /elsewhere/${USER}
permissions = deny-full-control
    /drop/*, allow-write
virtual_folders = /drop, /srv/drop/${USER}
upload_mode = direct

[accounts/a1]
name = bob@example.com
group = primary, extra
permissions = allow-list
    /private/*, deny-full-control
""")
    configuration = load_configuration(config_dir)
    bob = account(configuration, "bob@example.com")
    assert bob.home == Path("/srv/sftp/bob.example.com")
    assert (bob.upload_mode, bob.file_write_size) == ("atomic-resumable", 1000)
    allows = bob.permissions.permits
    assert allows("list", "/") and not allows("read", "/report.csv")  # account's global set
    assert allows("write", "/drop/in.csv")  # the second group's rule
    assert not allows("list", "/private/x")  # the account's own rule, tried first
    assert [(f.virtual, f.real) for f in bob.virtual_folders] == [
        ("/drop", "/srv/drop/bob.example.com")
    ]


def test_group_ip_filter_drops_the_group_and_no_group_left_refuses(
    write_ini: WriteIni, config_dir: Path
) -> None:
    write_ini("""
[groups/office]
home_folder_path = /srv/office
source_ip_filter = allow 10.0.0.0/8

[groups/anywhere]
home_folder_path = /srv/anywhere

[accounts/a1]
name = carol
group = office, anywhere

[accounts/a2]
name = dave
group = office
""")
    configuration = load_configuration(config_dir)
    assert account(configuration, "carol", "10.1.2.3").home == Path("/srv/office/carol")
    assert account(configuration, "carol", "192.0.2.9").home == Path("/srv/anywhere/carol")
    with pytest.raises(AccountRefused, match="refused by every group's filter"):
        account(configuration, "dave", "192.0.2.9")


def test_disabled_expired_and_filtered_accounts_are_refused_with_reasons(
    write_ini: WriteIni, config_dir: Path
) -> None:
    write_ini("""
[groups/DEFAULT_GROUP]
home_folder_path = /srv/${USER}

[groups/off]
enabled = no

[accounts/a1]
name = off
enabled = no

[accounts/a2]
name = gone
expire_datetime = 2026-01-01 12:00

[accounts/a3]
name = grouped
group = off

[accounts/a4]
name = v6
source_ip_filter = deny 2001:db8::/32
    allow ::/0
    allow 0.0.0.0/0
""")
    configuration = load_configuration(config_dir)
    with pytest.raises(AccountRefused, match="account is disabled"):
        account(configuration, "off")
    with pytest.raises(AccountRefused, match="expired"):
        account(configuration, "gone", now=datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    assert account(configuration, "gone", now=datetime(2026, 1, 1, 11, 59, tzinfo=UTC))
    with pytest.raises(AccountRefused, match="group 'off' is disabled"):
        account(configuration, "grouped")
    with pytest.raises(AccountRefused, match="source_ip_filter"):
        account(configuration, "v6", "2001:db8::5")
    assert account(configuration, "v6", "::ffff:192.0.2.1").name == "v6"


def test_login_names_become_one_safe_path_component() -> None:
    assert path_safe('a/b\\c:d*e?f"g<h>i|j@k') == "a.b.c.d.e.f.g.h.i.j.k"
    assert path_safe("..") == "__"
    assert path_safe("/") == "_"


def test_shared_prefix_gives_every_member_one_folder(write_ini: WriteIni, config_dir: Path) -> None:
    write_ini("""
[groups/DEFAULT_GROUP]
home_folder_path = ${SHARED}/srv/common

[groups/nohome]

[accounts/a1]
name = erin

[accounts/a2]
name = frank
group = nohome
""")
    configuration = load_configuration(config_dir)
    assert account(configuration, "erin").home == Path("/srv/common")
    with pytest.raises(AccountRefused, match="no home folder"):
        account(configuration, "frank")


def test_inherit_or_empty_takes_the_groups_value_and_bad_values_are_refused(
    write_ini: WriteIni, config_dir: Path
) -> None:
    write_ini("""
[groups/DEFAULT_GROUP]
home_folder_path = /srv/group
create_home_folder = yes
file_write_size = 4096

[accounts/a1]
name = gina
home_folder_path = inherit
create_home_folder = Inherit
file_write_size =

[accounts/a2]
name = hank
home_folder_path = /srv/own
create_home_folder = no
file_write_size = 0
""")
    configuration = load_configuration(config_dir)
    gina, hank = account(configuration, "gina"), account(configuration, "hank")
    assert (gina.home, gina.create_home, gina.file_write_size) == (
        Path("/srv/group/gina"),
        True,
        4096,
    )
    assert (hank.home, hank.create_home, hank.file_write_size) == (Path("/srv/own"), False, 0)
    write_ini("""
[accounts/a1]
name = ivan
create_home_folder = maybe
""")
    (problem,) = problems_of(config_dir)
    assert "[accounts/a1] create_home_folder: " in problem and "maybe" in problem


@pytest.mark.parametrize(
    "expression", ["/users/${USER}/*", "m/^/users/${USER}/"], ids=["glob", "regex"]
)
def test_a_user_name_with_pattern_characters_matches_only_its_own_folder(
    expression: str,
) -> None:
    """A directory may hold a name like ``a*`` or ``a.c``: filled into ``${USER}`` it is a
    literal, not a pattern reaching other users' folders."""
    full = PermissionSet(frozenset(VERBS), frozenset())
    rules = Permissions(PermissionSet(frozenset(), frozenset()), (PathRule(expression, full),))
    for name, own, other in (
        ("a*", "/users/a*/x", "/users/alice/x"),
        ("a.c", "/users/a.c/x", "/users/abc/x"),
    ):
        mine = rules.for_user(name)
        assert mine.permits("write", own)
        assert not mine.permits("write", other), (name, other)
