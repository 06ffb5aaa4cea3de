"""The ``[server]`` section: process-wide settings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, ClassVar

from pydantic import BeforeValidator, Field, field_validator

from ferryd.config.models.base import SectionModel, option
from ferryd.config.models.types import (
    CsvList,
    IniBool,
    PathTemplate,
    Seconds,
    Text,
    path_template,
)


def _optional_port(value: object) -> object:
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected a port number or nothing, got {text!r}") from None
    return value


class ServerModel(SectionModel):
    kind: ClassVar[str] = "server"
    summary: ClassVar[str] = "Process-wide settings; the only section without a UUID."

    uuid: Text = option(
        "single-server-uuid",
        doc="Identity of this server in events ({server.uuid}); set once, never change.",
        example="6a1f0c3e-8d2b-4f7a-9c1e-2b3d4e5f6a7b",
    )
    name: Text = option(
        "single-server-name", doc="Human name ({server.name}).", example="mft.example.com"
    )
    description: Text = option("", doc="Free text.", example="Partner gateway")
    authentications: CsvList = option(
        ("DEFAULT-AUTHENTICATION",),
        doc="Authentication method UUIDs tried in order when a service lists none.",
        example="DEFAULT-AUTHENTICATION, ldap-1",
    )
    umask: Text = option(
        "022",
        doc="Octal umask of the process: new files get 0666 & ~umask, folders 0777 & ~umask.",
        example="027",
    )
    ssh_server_keys: CsvList = option(
        (),
        doc="SSH host private key files used by SSH services that name none of their own.",
        example="ssh_host_ed25519_key, ssh_host_rsa_key",
    )
    tls_private_certificate: Text = option(
        "",
        doc="PEM file with the TLS private key and certificate chain for TLS services.",
        example="ssl_certificate.pem",
    )
    state_database: Text = option(
        "state.db3",
        doc="SQLite file of the embedded coordinator: failed-login counters and address "
        "bans, kept across restarts. Nodes sharing it share their bans. Relative to the "
        "configuration folder; read at start, so a change applies at the next restart.",
        example="/var/lib/ferryd/state.db3",
        min_length=1,
    )
    config_watch: IniBool = option(
        True,
        doc="`yes`: a change to server.ini or its override files is applied by itself, "
        "within a second (or `config_poll_interval` on network filesystems). `no`: only on "
        "SIGHUP, for administrators who stage edits across several files.",
        example="no",
    )
    config_poll_interval: Seconds = option(
        2.0,
        doc="Seconds between checks of server.ini and its override files, besides change "
        "notifications, for shared folders on network filesystems where another host's "
        "writes raise none. A change is applied without a restart. 0 relies on "
        "notifications (and SIGHUP) only.",
        example="5",
    )
    drain_timeout: Seconds = option(
        30.0,
        doc="Seconds that open sessions get to finish once the listeners closed when ferryd "
        "stops (SIGTERM, SIGINT, `ferryd drain`), and queued events then; sessions still "
        "open are closed (event 20264).",
        example="120",
    )
    drain_grace_period: Seconds = option(
        3.0,
        doc="When the node drains with a health listener configured: seconds between "
        "readiness failing and the services closing their listeners, so the load balancer "
        "notices first (HAProxy's `inter` times `fall`, plus a margin).",
        example="5",
    )
    health_address: Text = option(
        "127.0.0.1",
        doc="Address of the node's HTTP health listener (`/health/live`, `/health/ready`).",
        example="0.0.0.0",
        min_length=1,
    )
    health_port: Annotated[int | None, BeforeValidator(_optional_port)] = Field(
        None,
        description="Port of the node's HTTP health listener, for load balancers and "
        "keepalived; empty: no health listener; 0: a free port, announced by event 20262. "
        "Usually set per node in an override file.",
        examples=["8022"],
        ge=0,
        le=65535,
    )
    pid_file: PathTemplate = option(
        lambda: path_template("ferryd-{host.name}.pid"),
        doc="File holding the process id while the node runs, which `ferryd drain` reads; "
        "relative to the configuration folder; may use {host.name}.",
        example="/run/ferryd/{host.name}.pid",
    )

    @field_validator("umask")
    @classmethod
    def _umask(cls, value: str) -> str:
        text = value.strip()
        try:
            number = int(text, 8)
        except ValueError:
            raise ValueError(f"expected an octal mask such as 022 or 077, got {text!r}") from None
        if not 0 <= number <= 0o777:
            raise ValueError(f"expected an octal mask between 000 and 777, got {text!r}")
        return text

    @property
    def umask_value(self) -> int:
        return int(self.umask, 8)

    def references(self) -> Iterable[tuple[str, str, Iterable[str]]]:
        return [("authentications", "authentications", self.authentications)]
