"""The examples of docs/authentication-http.md are what ferryd loads, sends and accepts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from docblocks import doc_blocks

from ferryd.auth.credentials import Credentials
from ferryd.auth.methods.http import request_body
from ferryd.auth.methods.http_answer import build_account, parse_answer
from ferryd.config.configuration import Configuration
from ferryd.config.loader import load_configuration
from ferryd.config.models import HttpAuthenticationModel, SshServiceModel
from ferryd.events.event import ComponentRef, Peer

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "authentication-http.md"


def blocks(language: str) -> list[str]:
    return doc_blocks(GUIDE, language)


def json_example(top_key: str) -> dict[str, Any]:
    """The one ```json block whose top-level object has ``top_key``."""
    found = [doc for doc in map(json.loads, blocks("json")) if top_key in doc]
    assert len(found) == 1, f"expected one JSON example with {top_key!r}"
    document: dict[str, Any] = found[0]
    return document


@pytest.fixture
def configuration(tmp_path: Path) -> Configuration:
    (example,) = blocks("ini")
    (tmp_path / "server.ini").write_text(example)
    return load_configuration(tmp_path, node="node-a")


def test_the_example_configuration_is_valid(configuration: Configuration) -> None:
    method = configuration.sections[("authentications", "identity-service")].model
    assert isinstance(method, HttpAuthenticationModel)
    assert method.url == (
        "https://id1.example.com/ferryd/auth",
        "https://id2.example.com/ferryd/auth",
    )
    assert (method.timeout, method.url_suspend_interval, method.test_at_start) == (10, 60, True)
    assert method.headers == (("X-Api-Key", "0123456789abcdef"),)
    assert method.tls_trusted_certificates == "identity-ca.pem"
    service = configuration.sections[("services", "sftp-partners")].model
    assert isinstance(service, SshServiceModel)
    assert service.authentications == ("identity-service", "DEFAULT-AUTHENTICATION")


def test_the_request_example_is_what_ferryd_sends(configuration: Configuration) -> None:
    example = json_example("credentials")
    sent = example["credentials"]
    peer = Peer(**sent["peer"])
    creator = ComponentRef(uuid=sent["creator"]["uuid"], type=sent["creator"]["type"], name="")
    credentials = Credentials(
        "password", sent["username"], peer, password=sent["content"], service=creator
    )

    assert request_body(credentials, configuration.server.uuid) == example


def test_the_200_example_is_accepted_and_means_what_the_text_says(
    configuration: Configuration,
) -> None:
    body = json.dumps(json_example("account")).encode()

    account = build_account(configuration, "kevin", "192.0.2.10", parse_answer(body))

    assert (account.name, account.uuid, account.groups) == ("kevin", "kevin-7f3a", ("partners",))
    assert account.home == Path("/srv/sftp/kevin")
    assert account.create_home
    assert account.home_structure == ("inbox", "outbox")
    assert [(f.virtual, f.real) for f in account.virtual_folders] == [
        ("/reports", "/srv/reports/kevin")
    ]
    allows = account.permissions.permits
    assert allows("read", "/outbox/report.csv") and allows("list", "/")
    assert allows("write", "/inbox/invoice.pdf") and not allows("write", "/invoice.pdf")
