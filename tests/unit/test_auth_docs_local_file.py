"""The example of docs/authentication-local-file.md is a real, valid configuration and file."""

from __future__ import annotations

import re
from pathlib import Path

import asyncssh
import pytest
from docblocks import doc_blocks

from ferryd.auth.account import AccountRefused, resolve_account
from ferryd.auth.methods.local_file import identities_view
from ferryd.auth.passwords import verify_password
from ferryd.config.loader import load_configuration, load_identities
from ferryd.config.models import LocalFileAuthenticationModel, SshServiceModel
from ferryd.server import preflight

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "authentication-local-file.md"


def example(tmp_path: Path) -> tuple[Path, Path]:
    """The two ```ini blocks, written as server.ini and partners.ini (the method's path
    pointing to the latter)."""
    main, accounts = doc_blocks(GUIDE)
    partners = tmp_path / "partners.ini"
    partners.write_text(accounts)
    main, replaced = re.subn(r"(?m)^path = .*$", f"path = {partners}", main)
    assert replaced == 1, "the example has one path option: the method's"
    (tmp_path / "server.ini").write_text(main)
    return tmp_path, partners


def test_the_example_configuration_and_accounts_file_are_valid(tmp_path: Path) -> None:
    folder, partners = example(tmp_path)
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(
        str(folder / "ssh_host_ed25519_key")
    )

    configuration = load_configuration(folder, node="node-a")
    sections, fingerprint = load_identities(partners)

    assert preflight(configuration) == []
    method = configuration.sections[("authentications", "partners-file")].model
    assert isinstance(method, LocalFileAuthenticationModel)
    assert (method.path, method.external_management, method.changes_poll_interval) == (
        str(partners),
        True,
        10.0,
    )
    service = configuration.sections[("services", "sftp-partners")].model
    assert isinstance(service, SshServiceModel)
    assert service.authentications == ("partners-file", "DEFAULT-AUTHENTICATION")
    assert sorted(sections) == [
        ("accounts", "acme-uuid"),
        ("accounts", "globex-uuid"),
        ("groups", "partners"),
    ]
    assert fingerprint


def test_the_example_accounts_behave_as_the_comments_say(tmp_path: Path) -> None:
    folder, partners = example(tmp_path)
    view = identities_view(load_configuration(folder, node="node-a"), load_identities(partners)[0])

    found = view.account_named("acme")
    assert found is not None
    section, model = found
    assert verify_password(model.password, "example")
    acme = resolve_account(view, section.uuid, model, "192.0.2.7")
    assert acme.home == Path("/srv/sftp/acme")
    assert acme.home_structure == ("inbox", "outbox")
    allows = acme.permissions.permits
    assert allows("write", "/inbox/invoice.pdf") and not allows("write", "/invoice.pdf")
    assert allows("read", "/outbox/report.csv") and allows("list", "/")
    with pytest.raises(AccountRefused, match="source_ip_filter"):
        resolve_account(view, section.uuid, model, "198.51.100.1")

    found = view.account_named("globex")
    assert found is not None
    globex = resolve_account(view, found[0].uuid, found[1], "198.51.100.1")
    assert globex.required_credentials == "ssh-key"
    assert globex.authorized_keys[0].endswith(" globex@laptop")


def test_load_identities_accepts_an_account_naming_no_group(tmp_path: Path) -> None:
    partners = tmp_path / "partners.ini"
    partners.write_text("[accounts/dora-uuid]\nname = dora\npassword = $6$salt$hash\n")

    sections, _ = load_identities(partners)

    assert list(sections) == [("accounts", "dora-uuid")]
