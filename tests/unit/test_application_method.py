"""The ``application`` method's group rules: ``allowed_groups`` and ``strict_group_access``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ferryd.auth.credentials import Credentials, Outcome
from ferryd.auth.methods.application import authenticate_configured
from ferryd.auth.passwords import hash_password
from ferryd.config.loader import load_configuration
from ferryd.events.event import Peer

WriteIni = Callable[..., Path]
SECRET = "s3cret-pass"


def configuration(write_ini: WriteIni, config_dir: Path):  # type: ignore[no-untyped-def]
    write_ini(f"""
        [groups/DEFAULT_GROUP]
        home_folder_path = /srv/sftp

        [groups/partners]
        home_folder_path = /srv/partners
        permissions = allow-read, allow-list

        [groups/writers]
        home_folder_path = /srv/writers
        permissions = allow-full-control

        [accounts/acme]
        name = acme
        group = writers, partners
        password = {hash_password(SECRET)}

        [accounts/staff]
        name = staff
        password = {hash_password(SECRET)}
    """)
    return load_configuration(config_dir)


def login(name: str, password: str = SECRET) -> Credentials:
    return Credentials("password", name, Peer("192.0.2.1", 5000), password=password)


async def test_accounts_outside_allowed_groups_are_left_to_the_next_method(
    write_ini: WriteIni, config_dir: Path
) -> None:
    config = configuration(write_ini, config_dir)
    decision = await authenticate_configured(config, login("staff"), ("partners",))
    assert decision.outcome is Outcome.UNKNOWN
    assert "allowed_groups" in decision.reason
    accepted = await authenticate_configured(config, login("acme"), ("partners",))
    assert accepted.outcome is Outcome.ACCEPT and accepted.account is not None
    assert accepted.account.groups == ("writers", "partners"), "not strict: every group applies"
    assert accepted.account.home == Path("/srv/writers/acme")


async def test_strict_group_access_keeps_only_the_allowed_groups(
    write_ini: WriteIni, config_dir: Path
) -> None:
    config = configuration(write_ini, config_dir)
    decision = await authenticate_configured(config, login("acme"), ("partners",), True)
    assert decision.outcome is Outcome.ACCEPT and decision.account is not None
    assert decision.account.groups == ("partners",)
    assert decision.account.home == Path("/srv/partners/acme")
    assert not decision.account.permissions.at("/report.csv").permits("write")


async def test_wrong_password_and_unknown_name(write_ini: WriteIni, config_dir: Path) -> None:
    config = configuration(write_ini, config_dir)
    wrong = await authenticate_configured(config, login("acme", "nope"))
    assert (wrong.outcome, wrong.reason) == (Outcome.REJECT, "invalid password")
    unknown = await authenticate_configured(config, login("ghost"))
    assert unknown.outcome is Outcome.UNKNOWN
