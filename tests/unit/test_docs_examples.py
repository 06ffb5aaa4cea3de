"""The examples in docs/configuration-guide.md are real, valid configurations."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import asyncssh
import pytest
from docblocks import doc_blocks

from ferryd.auth.account import AccountRefused, resolve_account
from ferryd.auth.passwords import verify_password
from ferryd.config.loader import load_configuration
from ferryd.config.models import LocalFileHandlerModel
from ferryd.server import preflight

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "configuration-guide.md"


def test_the_guide_example_is_valid_and_its_override_applies(tmp_path: Path) -> None:
    main, override = doc_blocks(GUIDE)
    (tmp_path / "server.ini").write_text(main)
    configuration = load_configuration(tmp_path, node="node-a")
    assert preflight(configuration) == []
    model = configuration.sections[("event-handlers", "DEFAULT-FILE")].model
    assert isinstance(model, LocalFileHandlerModel)
    assert model.rotate_on == "00:00 time-of-day"
    (tmp_path / "server.override.ini").write_text(override)
    overridden = load_configuration(tmp_path, node="node-a")
    model = overridden.sections[("event-handlers", "DEFAULT-FILE")].model
    assert isinstance(model, LocalFileHandlerModel)
    assert (model.rotate_on, model.rotate_at_size, model.rotate_count) == (
        "disabled",
        104857600,
        10,
    )
    assert model.path.text == "log/server-{host.name}.log"


SFTP_GUIDE = GUIDE.parent / "sftp.md"


def test_the_sftp_guide_example_behaves_as_its_comments_say(tmp_path: Path) -> None:
    (block,) = doc_blocks(SFTP_GUIDE)
    (tmp_path / "server.ini").write_text(block)
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(
        str(tmp_path / "ssh_host_ed25519_key")
    )
    configuration = load_configuration(tmp_path, node="node-a")
    assert preflight(configuration) == []
    found = configuration.account_named("acme")
    assert found is not None
    section, model = found
    account = resolve_account(configuration, section.uuid, model, "192.0.2.7")
    assert account.home == Path("/srv/sftp/acme")
    assert account.home_structure == ("inbox", "outbox")
    assert verify_password(model.password, "example")
    allows = account.permissions.permits
    assert allows("write", "/inbox/invoice.pdf") and not allows("write", "/invoice.pdf")
    assert allows("read", "/outbox/report.csv") and allows("list", "/")
    assert allows("read", "/reports/q3.pdf") and not allows("write", "/reports/q3.pdf")
    assert [(f.virtual, f.real) for f in account.virtual_folders] == [("/reports", "/srv/reports")]
    with pytest.raises(AccountRefused, match="source_ip_filter"):
        resolve_account(configuration, section.uuid, model, "198.51.100.1")
    with pytest.raises(AccountRefused, match="expired"):
        resolve_account(
            configuration, section.uuid, model, "192.0.2.7", now=datetime(2027, 7, 1, tzinfo=UTC)
        )


HA_GUIDE = GUIDE.with_name("high-availability.md")


def test_the_ha_guide_placement_example_is_valid_on_the_shared_configuration(
    tmp_path: Path,
) -> None:
    """Blocks marked for the end-to-end tests run there; the others must load on top of the
    shared server.ini they extend."""
    (shared,) = doc_blocks(HA_GUIDE, marker="active-active/server.ini")
    loose = doc_blocks(HA_GUIDE)
    assert loose, "the guide's unmarked ini examples"
    base = shared.replace("/srv/ferryd/files", str(tmp_path / "files"))
    (tmp_path / "ssh_host_ed25519_key").write_bytes(
        asyncssh.generate_private_key("ssh-ed25519").export_private_key()
    )
    # What each node's --override file adds (see the guide's node files).
    (tmp_path / "server.override.ini").write_text("[services/sftp]\nport = 2222\n")
    for example in loose:
        (tmp_path / "server.ini").write_text(base + "\n" + example)
        for node in ("node-a", "node-b"):
            configuration = load_configuration(tmp_path, node=node)
            assert preflight(configuration) == []
        model = configuration.sections[("services", "partners-legacy")].model
        assert getattr(model, "cluster_activation", None) == ("node-a",)
        assert not model.placed_on("node-b")  # type: ignore[attr-defined]
