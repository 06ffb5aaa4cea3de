"""The examples in docs/configuration-guide.md are real, valid configurations."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import asyncssh
import pytest

from ferryd.auth.account import AccountRefused, resolve_account
from ferryd.auth.passwords import verify_password
from ferryd.config.loader import load_configuration
from ferryd.config.models import LocalFileHandlerModel
from ferryd.server import preflight

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "configuration-guide.md"


def ini_blocks() -> list[str]:
    return re.findall(r"```ini\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)


def test_the_guide_example_is_valid_and_its_override_applies(tmp_path: Path) -> None:
    main, override = ini_blocks()
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
    (block,) = re.findall(r"```ini\n(.*?)```", SFTP_GUIDE.read_text(), flags=re.DOTALL)
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
