"""``tls_trusted_certificates``, resolved the same way for every client-side TLS connection."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from ferryd.bootstrap import initialise
from ferryd.config.loader import load_configuration
from ferryd.tls_trust import resolve_trust


@pytest.fixture
def configuration(tmp_path: Path):  # type: ignore[no-untyped-def]
    initialise(tmp_path / "conf")  # writes a self-signed ssl_certificate.pem among others
    return load_configuration(tmp_path / "conf")


def test_empty_trusts_the_system_and_verifies(configuration) -> None:  # type: ignore[no-untyped-def]
    trust = resolve_trust(configuration, "")
    context = trust.context()
    assert trust.verify and trust.ca_file is None
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_disable_identity_security_verifies_nothing(configuration) -> None:  # type: ignore[no-untyped-def]
    trust = resolve_trust(configuration, " disable-identity-security ")
    assert not trust.verify and trust.context() is None


def test_a_relative_pem_file_is_found_in_the_configuration_folder(configuration) -> None:  # type: ignore[no-untyped-def]
    trust = resolve_trust(configuration, "ssl_certificate.pem")
    assert trust.ca_file == configuration.config_dir / "ssl_certificate.pem"
    context = trust.context()
    assert context is not None and context.cert_store_stats()["x509"] == 1


def test_unusable_files_are_refused_saying_why(configuration) -> None:  # type: ignore[no-untyped-def]
    missing = configuration.config_dir / "nowhere.pem"
    with pytest.raises(ValueError, match=f"{missing} does not exist or is not a file"):
        resolve_trust(configuration, "nowhere.pem")
    junk = configuration.config_dir / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ValueError, match=f"cannot load {junk}"):
        resolve_trust(configuration, "junk.pem")
