"""Service sections (reference 2.1 and 2.2): what listens, where, and how it negotiates."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Literal

from asyncssh.encryption import get_encryption_algs
from asyncssh.kex import get_kex_algs
from asyncssh.mac import get_mac_algs
from asyncssh.public_key import get_public_key_algs
from pydantic import field_validator

from ferryd.config.models.base import ComponentModel, option
from ferryd.config.models.types import CsvList, IniBool, IniInt, Networks, Seconds, Text

# Modern algorithms only: no SHA-1, no CBC, no small DH groups (reference 9.2, "secure").
_SECURE_KEX = (
    "mlkem768x25519-sha256",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp521",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp256",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group14-sha256",
)
_SECURE_CIPHERS = (
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
)
_SECURE_MACS = (
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "umac-128-etm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "umac-128@openssh.com",
)
_SECURE_SIGNATURES = (
    "ssh-ed25519",
    "ssh-ed448",
    "ecdsa-sha2-nistp521",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp256",
    "rsa-sha2-512",
    "rsa-sha2-256",
)


def _names(found: list[bytes]) -> tuple[str, ...]:
    return tuple(name.decode("ascii") for name in found)


@dataclass(frozen=True, slots=True)
class SshAlgorithms:
    """The lists handed to the SSH library; empty ``signatures`` means what the keys allow."""

    kex: tuple[str, ...]
    ciphers: tuple[str, ...]
    macs: tuple[str, ...]
    signatures: tuple[str, ...]


def ssh_algorithms(cipher_list: tuple[str, ...]) -> SshAlgorithms:
    """Resolve ``ssh_cipher_list``: ``secure``, ``all`` or explicit names of any family."""
    known_kex = _names(get_kex_algs())
    known_ciphers = _names(get_encryption_algs())
    known_macs = _names(get_mac_algs())
    known_sigs = _names(get_public_key_algs())
    if "all" in cipher_list:
        return SshAlgorithms(known_kex, known_ciphers, known_macs, known_sigs)
    if "secure" in cipher_list:
        return SshAlgorithms(
            tuple(n for n in _SECURE_KEX if n in known_kex),
            _SECURE_CIPHERS,
            _SECURE_MACS,
            _SECURE_SIGNATURES,
        )
    kex: list[str] = []
    ciphers: list[str] = []
    macs: list[str] = []
    sigs: list[str] = []
    for name in cipher_list:
        for known, chosen in (
            (known_kex, kex),
            (known_ciphers, ciphers),
            (known_macs, macs),
            (known_sigs, sigs),
        ):
            if name in known:
                chosen.append(name)
                break
        else:
            raise ValueError(
                f"unknown SSH algorithm {name!r}; use 'secure', 'all' or names such as "
                "curve25519-sha256, aes128-gcm@openssh.com, hmac-sha2-256-etm@openssh.com"
            )
    missing = [f for f, n in (("key exchange", kex), ("cipher", ciphers), ("MAC", macs)) if not n]
    if missing:
        raise ValueError(f"the list needs at least one {' and one '.join(missing)} algorithm")
    return SshAlgorithms(tuple(kex), tuple(ciphers), tuple(macs), tuple(sigs) or known_sigs)


class ServiceModel(ComponentModel):
    """Options every TCP service shares (reference 2.1)."""

    address: Text = option(
        "127.0.0.1",
        doc="Address to listen on: an IP literal or host name; `0.0.0.0` every IPv4 "
        "interface, `::` every interface.",
        example="0.0.0.0",
        min_length=1,
    )
    port: IniInt = option(
        doc="TCP port to listen on; 0 takes a free port, announced by the service's "
        "listening event (for tests).",
        example="10022",
        ge=0,
        le=65535,
    )
    authentications: CsvList = option(
        (),
        doc="Authentication method UUIDs tried in order; empty: `[server] authentications`.",
        example="DEFAULT-AUTHENTICATION",
    )
    idle_connection_timeout: Seconds = option(
        300.0,
        doc="Seconds without any request after which a session is closed; 0 uses 300.",
        example="600",
    )
    security_policy: Text = option(
        "DEFAULT-SECURITY-POLICY",
        doc="UUID of the [security-policies/...] section checked before authentication; "
        "empty: no policy (no deny list, no bans, no failed-login delay).",
        example="partners-policy",
    )
    block_source_at_connection: IniBool = option(
        False,
        doc="`yes`: a banned or denied address is disconnected as soon as it connects, "
        "before the protocol starts (no greeting, no message).",
        example="yes",
    )
    proxy_protocol: Literal["off", "optional", "required"] = option(
        "off",
        doc="PROXY protocol (v1 or v2, as HAProxy's `send-proxy` and `send-proxy-v2` write "
        "it) ahead of each connection, naming the real client behind a load balancer: "
        "`off`; `required`: every connection must start with a header, from an address in "
        "`proxy_protocol_trusted_sources`; `optional`: a header is used when a trusted "
        "source sends one, and connections without one are served as direct ones (for a "
        "migration; a client that waits for the server to speak first is served after "
        "`proxy_protocol_timeout`). The real address then appears in events and is what "
        "source filters, bans and HTTP authentication see. A v2 LOCAL header (a "
        "balancer's health check) is closed quietly.",
        example="required",
    )
    proxy_protocol_trusted_sources: Networks = option(
        (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")),
        doc="Networks allowed to send a PROXY header: the load balancers. A header from "
        "any other address is refused (event 30077), since it could claim any client "
        "address.",
        example="10.0.0.5, 10.0.1.0/28",
    )
    proxy_protocol_timeout: Seconds = option(
        5.0,
        doc="Seconds a connection gets to deliver its PROXY header before it is closed "
        "(event 30077).",
        example="2",
        gt=0,
    )
    maximum_concurrent_connections: IniInt = option(
        10000,
        doc="Open connections the service accepts at once (0: no limit); the next is "
        "refused with event 30051.",
        example="500",
        ge=0,
    )

    @property
    def idle_timeout(self) -> float:
        return self.idle_connection_timeout if self.idle_connection_timeout > 0 else 300.0

    def references(self) -> Iterable[tuple[str, str, Iterable[str]]]:
        policies = [self.security_policy] if self.security_policy else []
        return [
            ("authentications", "authentications", self.authentications),
            ("security_policy", "security-policies", policies),
        ]


class SshServiceModel(ServiceModel):
    kind: ClassVar[str] = "services"
    type_name: ClassVar[str] = "ssh"
    summary: ClassVar[str] = "SFTP (protocol version 3) and SCP over SSH-2."

    type: Literal["ssh"] = option(doc="`ssh`.", example="ssh")
    sftp: IniBool = option(True, doc="Serve the SFTP subsystem.", example="no")
    scp: IniBool = option(
        False,
        doc="Serve the legacy SCP protocol (`scp -O`); current OpenSSH `scp` uses SFTP.",
        example="yes",
    )
    ssh_server_keys: CsvList = option(
        (),
        doc="Host private key files (several types are offered at once); empty: "
        "`[server] ssh_server_keys`.",
        example="ssh_host_ed25519_key, ssh_host_rsa_key",
    )
    ssh_cipher_list: CsvList = option(
        ("secure",),
        doc="`secure` (modern key exchange, ciphers, MACs and host-key signatures only), "
        "`all` (everything the SSH library offers), or an explicit list of algorithm names "
        "of any family that must include a key exchange, a cipher and a MAC.",
        example="curve25519-sha256, aes128-gcm@openssh.com, hmac-sha2-256-etm@openssh.com",
    )
    before_login_message: Text = option(
        "",
        doc="Banner sent to the client before authentication.",
        example="Authorised use only.",
    )

    @field_validator("ssh_cipher_list")
    @classmethod
    def _ciphers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("expected 'secure', 'all' or a list of algorithm names")
        ssh_algorithms(value)
        return value

    @property
    def algorithms(self) -> SshAlgorithms:
        return ssh_algorithms(self.ssh_cipher_list)
