"""Generated documentation stays in sync; `ferryd init` makes a folder that runs as it is."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from ferryd.auth.credentials import Credentials, Outcome
from ferryd.auth.methods.application import ApplicationAuthentication
from ferryd.auth.passwords import UnsupportedHash, hash_password, verify_password
from ferryd.bootstrap import AlreadyInitialised, initialise, planned_files
from ferryd.config.loader import load_configuration
from ferryd.config.models import MODELS, ServerModel
from ferryd.docs import configuration_markdown, events_markdown
from ferryd.events.bus import EventBus
from ferryd.events.event import Peer, ServerRef
from ferryd.lifecycle import ComponentContext
from ferryd.server import preflight

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_events_doc_matches_the_catalogue() -> None:
    assert (DOCS / "events.md").read_text() == events_markdown(), "run `make docs`"


def test_configuration_doc_matches_the_models() -> None:
    assert (DOCS / "configuration.md").read_text() == configuration_markdown(), "run `make docs`"


@pytest.mark.parametrize("model", [ServerModel, *MODELS.values()], ids=lambda m: m.__name__)
def test_every_option_has_a_meaning_and_an_example(model: type) -> None:
    for name, field in model.model_fields.items():
        assert field.description, f"{model.__name__}.{name} has no description"
        assert field.examples, f"{model.__name__}.{name} has no example"


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    folder = tmp_path_factory.mktemp("init") / "configuration"
    credentials = initialise(folder)
    return folder, credentials.admin_password, credentials.demo_password


def test_init_creates_a_valid_configuration_with_private_secrets(
    initialised: tuple[Path, str, str],
) -> None:
    folder, _, _ = initialised
    configuration = load_configuration(folder, node="n1")
    assert preflight(configuration) == []
    for path in planned_files(folder):
        assert path.exists()
        if path.name != "server.ini" and path.suffix != ".pub":
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert "BEGIN OPENSSH PRIVATE KEY" in (folder / "ssh_host_ed25519_key").read_text()
    assert "BEGIN CERTIFICATE" in (folder / "ssl_certificate.pem").read_text()
    text = (folder / "server.ini").read_text()
    assert text.startswith("# ferryd configuration")
    assert "path = log/server-{host.name}.log" in text


def test_init_stores_only_hashes_of_the_printed_passwords(
    initialised: tuple[Path, str, str],
) -> None:
    folder, admin_password, demo_password = initialised
    text = (folder / "server.ini").read_text()
    assert admin_password not in text and demo_password not in text
    configuration = load_configuration(folder)
    found = configuration.account_named("demo")
    assert found is not None
    assert verify_password(found[1].password, demo_password)


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "configuration"
    folder.mkdir()
    (folder / "ssh_host_rsa_key").write_text("precious")
    with pytest.raises(AlreadyInitialised, match="ssh_host_rsa_key"):
        initialise(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["ssh_host_rsa_key"]
    assert (folder / "ssh_host_rsa_key").read_text() == "precious"


def test_password_verification() -> None:
    stored = hash_password("s3cret")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "s3cret")
    assert not verify_password(stored, "S3cret")
    assert not verify_password("", "")
    with pytest.raises(UnsupportedHash, match="unsupported password hash scheme '1'"):
        verify_password("$1$old$md5", "x")


async def test_application_method_accepts_rejects_and_passes_on(
    initialised: tuple[Path, str, str],
) -> None:
    folder, _, demo_password = initialised
    configuration = load_configuration(folder)
    model = configuration.component_model(("authentications", "DEFAULT-AUTHENTICATION"))
    context = ComponentContext(
        EventBus(ServerRef("s", "s", "n")),
        "authentications",
        "DEFAULT-AUTHENTICATION",
        lambda: configuration,
    )
    method = ApplicationAuthentication(model, context)  # type: ignore[arg-type]
    await method.start()
    peer = Peer("127.0.0.1", 50000)

    def password(name: str, secret: str) -> Credentials:
        return Credentials("password", name, peer, password=secret)

    accepted = await method.authenticate(password("demo", demo_password))
    assert accepted.outcome is Outcome.ACCEPT and accepted.account is not None
    assert accepted.account.home == folder / "files" / "demo"
    rejected = await method.authenticate(password("demo", "wrong"))
    assert (rejected.outcome, rejected.reason) == (Outcome.REJECT, "invalid password")
    unknown = await asyncio.wait_for(method.authenticate(password("nobody", "x")), 5)
    assert unknown.outcome is Outcome.UNKNOWN
