"""docs/authentication.md: its examples load, and they mean what the page says."""

from __future__ import annotations

from pathlib import Path

from docblocks import doc_blocks

from ferryd.auth.account import resolve_account
from ferryd.auth.policy import ActivePolicy, Refusal, Screen
from ferryd.bans import render
from ferryd.cluster.coordinator import Ban
from ferryd.config.loader import load_configuration
from ferryd.config.models import AccountModel, SecurityPolicyModel, SshServiceModel

PAGE = Path(__file__).resolve().parents[2] / "docs" / "authentication.md"


def blocks(kind: str) -> list[str]:
    return doc_blocks(PAGE, kind)


def test_policy_example_loads_and_screens_as_described(tmp_path: Path) -> None:
    (tmp_path / "server.ini").write_text(blocks("ini")[0])
    configuration = load_configuration(tmp_path)
    service = configuration.sections[("services", "sftp-partners")].model
    assert isinstance(service, SshServiceModel) and service.block_source_at_connection
    model = configuration.sections[("security-policies", service.security_policy)].model
    assert isinstance(model, SecurityPolicyModel)
    policy = ActivePolicy(service.security_policy, model)

    class NoBans:
        def banned(self, scope: str, address: str) -> None:
            return None

    guard = NoBans()
    assert policy.screen_login(guard, "10.20.3.4", "root") is Screen.EXEMPT  # type: ignore[arg-type]
    refused = policy.screen_login(guard, "198.51.100.9", "acme")  # type: ignore[arg-type]
    assert isinstance(refused, Refusal) and refused.event_id == "20005"
    named = policy.screen_login(guard, "192.0.2.1", "Administrator")  # type: ignore[arg-type]
    assert isinstance(named, Refusal) and named.event_id == "20136"


def test_anonymous_example_maps_to_a_read_only_account(tmp_path: Path) -> None:
    (tmp_path / "server.ini").write_text(
        blocks("ini")[1] + "\n[groups/DEFAULT_GROUP]\nhome_folder_path = /srv/sftp\n"
    )
    configuration = load_configuration(tmp_path)
    section = configuration.sections[("accounts", "public")]
    assert isinstance(section.model, AccountModel)
    account = resolve_account(configuration, "public", section.model, "192.0.2.1")
    assert account.name == "public-downloads"
    assert account.permissions.global_set.allowed == {"read", "list"}


def test_chain_example_loads(tmp_path: Path) -> None:
    (tmp_path / "server.ini").write_text(blocks("ini")[2])
    configuration = load_configuration(tmp_path)
    assert configuration.server.authentications == (
        "partners-file",
        "identity-service",
        "corporate-ldap",
    )


def test_bans_list_example_has_the_columns_the_command_prints() -> None:
    (console,) = blocks("console")
    shown_header = console.splitlines()[1]
    printed = render([Ban("security-policies/X", "203.0.113.7", 0.0, 60.0, 5, "r")])
    assert shown_header.split() == printed.splitlines()[0].split()
