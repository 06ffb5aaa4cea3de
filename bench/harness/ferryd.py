"""ferryd servers: ``ferryd init``, then server.ini edited with the project's own INI API.

Three configurations exist: ``ferryd`` keeps the event handlers ``ferryd init`` writes (an
audit file and the console: what an operator runs), ``ferryd-quiet`` has every handler off,
and ``ferryd-events`` has only one ``local-file`` handler writing every event as
``{id} {message}``. The last two are compared with each other for the cost of events.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from harness.server import Server, free_port, run_checked
from harness.workspace import Workspace

if TYPE_CHECKING:
    from ferryd.ini import Document

FERRYD = Path(sys.executable).parent / "ferryd"
FERRYD_USER = "bench"
SSH_SERVICE = "services/DEFAULT-SSH"
DEFAULT_GROUP = "groups/DEFAULT_GROUP"
EVENTS_HANDLER = "event-handlers/BENCH-EVENTS"
EVENTS_ENTRY = "{id} {message}"


class Handlers(Enum):
    """Which event handlers a ferryd configuration runs."""

    DEFAULT = "ferryd"
    OFF = "ferryd-quiet"
    EVENTS = "ferryd-events"


def find_ssh_service(document: Document) -> str:
    """The SSH service section ``ferryd init`` wrote, or the default name to add."""
    if document.has_section(SSH_SERVICE):
        return SSH_SERVICE
    for section in document.sections():
        kind = document.get(section, "type")
        if section.startswith("services/") and kind is not None and kind.value == "ssh":
            return section
    return SSH_SERVICE


def set_handlers(document: Document, handlers: Handlers, events_log: Path) -> None:
    """Leave ``ferryd init``'s handlers, turn them all off, or replace them with one file."""
    if handlers is Handlers.DEFAULT:
        return
    for section in document.sections():
        if section.startswith("event-handlers/"):
            document.set(section, "enabled", "no")
    if handlers is Handlers.EVENTS:
        for option, value in (
            ("name", "Benchmark: every event"),
            ("type", "local-file"),
            ("path", str(events_log)),
            ("entry_content", EVENTS_ENTRY),
        ):
            document.set(EVENTS_HANDLER, option, value)


def configure_ferryd(
    config_file: Path,
    port: int,
    home_root: Path,
    public_key: str,
    password_hash: str,
    handlers: Handlers,
    events_log: Path,
) -> None:
    """Edit server.ini with the project's own lossless INI API, as an operator's tool would.

    Imported here so ``--only openssh`` keeps working while ferryd itself is mid-change.
    """
    from ferryd.ini import read_document, write_document

    document = read_document(config_file)
    service = find_ssh_service(document)
    if not document.has_section(service):
        document.set(service, "name", "SFTP benchmark")
    for option, value in (
        ("type", "ssh"),
        ("port", str(port)),
        ("address", "127.0.0.1"),
        ("ssh_cipher_list", "all"),
    ):
        document.set(service, option, value)
    document.set(DEFAULT_GROUP, "home_folder_path", f"{home_root}/${{USER}}")
    document.set(DEFAULT_GROUP, "create_home_folder", "yes")
    account = f"accounts/{FERRYD_USER}"
    for option, value in (
        ("name", FERRYD_USER),
        ("group", "DEFAULT_GROUP"),
        ("ssh_authorized_keys_content", public_key),
        ("password", password_hash),
    ):
        document.set(account, option, value)
    set_handlers(document, handlers, events_log)
    write_document(config_file, document)


def events_log_path(workspace: Workspace, handlers: Handlers) -> Path:
    """Where the ``ferryd-events`` configuration writes its events."""
    return workspace.root / handlers.value / "events.log"


def ferryd_server(workspace: Workspace, handlers: Handlers, password_hash: str) -> Server:
    """A configured (not yet started) ferryd, checked with ``ferryd check``.

    ``password_hash`` is the same sha512-crypt hash OpenSSH's system account has, or empty
    (no password logins) when the harness could not create that account.
    """
    name = handlers.value
    folder = workspace.root / name
    config_dir = folder / "config"
    run_checked([FERRYD, "init", "--config-dir", config_dir])
    port = free_port()
    home_root = folder / "home"
    events_log = events_log_path(workspace, handlers)
    configure_ferryd(
        config_dir / "server.ini",
        port,
        home_root,
        workspace.public_key,
        password_hash,
        handlers,
        events_log,
    )
    try:
        run_checked([FERRYD, "check", "--config-dir", config_dir])
    except RuntimeError as error:
        raise RuntimeError(
            "ferryd refuses the benchmark configuration (run with --only openssh until it"
            f" supports it): {error}"
        ) from None
    return Server(
        name=name,
        command=[str(FERRYD), "serve", "--config-dir", str(config_dir)],
        port=port,
        user=FERRYD_USER,
        # Relative paths work whether ferryd shows the home folder as "/" or its real path.
        remote_root=".",
        local_root=home_root / FERRYD_USER,
        log=folder / "ferryd.log",
        password_user=FERRYD_USER if password_hash else None,
    )
