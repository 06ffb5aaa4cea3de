"""Event handler sections (reference 5.2)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import field_validator

from ferryd.config.models.base import EventHandlerModel, option
from ferryd.config.models.rotation import RotateOn
from ferryd.config.models.types import (
    EventTemplate,
    IniBool,
    IniInt,
    PathTemplate,
    Text,
    event_template,
    path_template,
)

DEFAULT_ENTRY_CONTENT = (
    "{timestamp.iso_8601_local} {id} {component.uuid} {account.name} "
    "{account.peer.address}:{account.peer.port} {message}"
)
_ENTRY_DOC = (
    "Template of one log line, with {variables} from the event (see docs/events.md); "
    "a newline is added if missing."
)


class LocalFileHandlerModel(EventHandlerModel):
    kind: ClassVar[str] = "event-handlers"
    type_name: ClassVar[str] = "local-file"
    summary: ClassVar[str] = "Writes events as text lines to a file, with rotation."

    type: Literal["local-file"] = option(doc="`local-file`.", example="local-file")
    path: PathTemplate = option(
        lambda: path_template("log/server.log"),
        doc="Log file; may use {host.name}, {host.fqdn}, {server.uuid}, {server.name}. "
        "Missing folders are created.",
        example="/var/log/ferryd/server-{host.name}.log",
    )
    entry_content: EventTemplate = option(
        lambda: event_template(DEFAULT_ENTRY_CONTENT), doc=_ENTRY_DOC, example="{id} {message}"
    )
    rotate_external: IniBool = option(
        False,
        doc="Follow external rotation: when another tool moves the file away, the next "
        "entry goes to a new file at `path`. SIGHUP always reopens the file.",
        example="yes",
    )
    rotate_at_size: IniInt = option(
        0,
        doc="Rotate before the file would exceed this many bytes (0: never); ignored when "
        "`rotate_on` is set. Rotated files are `path.1` (newest), `path.2`...",
        example="104857600",
        ge=0,
    )
    rotate_on: Text = option(
        "disabled",
        doc="Time rotation: `disabled`, `N day-of-month` (1-31; 31 is the last day) or "
        "`HH:MM time-of-day`, local time. Rotated files are named `path.YYYY-MM-DD` "
        "(monthly) or `path.YYYY-MM-DDTHHMMSS` (daily).",
        example="00:00 time-of-day",
    )
    rotate_count: IniInt = option(
        0,
        doc="Rotated files to keep: 0 keeps all, N the newest N, -1 truncates the file in "
        "place instead of keeping a copy.",
        example="30",
        ge=-1,
    )

    @field_validator("rotate_on")
    @classmethod
    def _rotate_on(cls, value: str) -> str:
        RotateOn.parse(value)
        return value.strip()


class StandardStreamHandlerModel(EventHandlerModel):
    kind: ClassVar[str] = "event-handlers"
    type_name: ClassVar[str] = "standard-stream"
    summary: ClassVar[str] = "Writes events to standard output (containers, `make run`)."

    type: Literal["standard-stream"] = option(doc="`standard-stream`.", example="standard-stream")
    entry_content: EventTemplate = option(
        lambda: event_template(DEFAULT_ENTRY_CONTENT), doc=_ENTRY_DOC, example="{id} {message}"
    )
