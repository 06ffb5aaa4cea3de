"""Which certificate authorities a client-side TLS connection trusts (``tls_trusted_certificates``
of HTTP and LDAP authentication, later of locations and handlers), resolved one way for all."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import certifi

from ferryd.config.configuration import Configuration

NO_VERIFICATION = "disable-identity-security"


@dataclass(frozen=True, slots=True)
class Trust:
    verify: bool
    ca_file: Path | None  # None: the system's authorities

    def context(self) -> ssl.SSLContext | None:
        """A client context verifying servers as configured; None when nothing is verified.
        Blocking: reads the CA files."""
        if not self.verify:
            return None
        if self.ca_file is not None:
            return ssl.create_default_context(cafile=str(self.ca_file))
        context = ssl.create_default_context()  # the system's authorities...
        context.load_verify_locations(cafile=certifi.where())  # ...and Mozilla's, if it has none
        return context


def resolve_trust(configuration: Configuration, value: str) -> Trust:
    """``value`` is empty (the system's authorities), ``disable-identity-security``, or a PEM
    file (relative to the configuration folder). Blocking: a file is loaded once to prove it
    usable; raises ValueError saying why it is not."""
    text = value.strip()
    if text == NO_VERIFICATION:
        return Trust(False, None)
    if not text:
        return Trust(True, None)
    path = configuration.resolve_path(text)
    if not path.is_file():
        raise ValueError(f"{path} does not exist or is not a file")
    try:
        ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ValueError(f"cannot load {path}: {reason}") from None
    return Trust(True, path)


def trust_file(configuration: Configuration, value: str) -> list[Path]:
    """The CA file ``value`` names, as a list of files to watch (empty when none)."""
    text = value.strip()
    if not text or text == NO_VERIFICATION:
        return []
    return [configuration.resolve_path(text)]
