"""What every section model shares, and ``option()``, which documents each option in place."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ferryd.config.models.types import CsvList, IniBool, IniInt, Text


def option(default: Any = ..., *, doc: str, example: str, **constraints: Any) -> Any:
    """A pydantic field carrying its documentation; docs/configuration.md is built from these."""
    if callable(default) and not isinstance(default, type):
        return Field(default_factory=default, description=doc, examples=[example], **constraints)
    return Field(default, description=doc, examples=[example], **constraints)


def changed_options(old: BaseModel, new: BaseModel) -> list[str]:
    """Names of the options whose values differ, in declaration order (models of one class)."""
    return [n for n in type(new).model_fields if getattr(old, n, None) != getattr(new, n, None)]


CREATED_DOC = "When the section was created (informative)."
CHANGED_DOC = "When the section last changed (informative)."


class SectionModel(BaseModel):
    """One INI section; unknown options are errors, values are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    kind: ClassVar[str] = ""
    type_name: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    def references(self) -> Iterable[tuple[str, str, Iterable[str]]]:
        """``(option, kind, uuids)``: the sections this one names, which must exist."""
        return ()


class ComponentModel(SectionModel):
    """Sections that run as components: they can be disabled and placed on some nodes only."""

    type: Text = option(doc="What the component is; chooses the other options.", example="...")
    name: Text = option("", doc="Human name shown in events and logs.", example="Audit log")
    description: Text = option("", doc="Free text for administrators.", example="Kept 30 days")
    enabled: IniBool = option(
        True, doc="`no` stops the component (and keeps its configuration).", example="no"
    )
    cluster_activation: CsvList = option(
        ("all",),
        doc="Nodes that run this component: `all`, or a list of node names ({host.name}). "
        "On other nodes it is validated but not started.",
        example="node-a, node-b",
    )
    created: Text = option("", doc=CREATED_DOC, example="2026-11-24")
    changed: Text = option("", doc=CHANGED_DOC, example="2026-11-24")

    @field_validator("cluster_activation")
    @classmethod
    def _activation(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("expected 'all' or a list of node names, got an empty value")
        if "all" in value and len(value) > 1:
            raise ValueError("'all' already covers every node; remove the other names")
        return value

    def placed_on(self, node_name: str) -> bool:
        return "all" in self.cluster_activation or node_name in self.cluster_activation

    def runs_on(self, node_name: str) -> bool:
        """Enabled and placed on this node: the one rule for whether it should run here."""
        return self.enabled and self.placed_on(node_name)


class EventHandlerModel(ComponentModel):
    """SFTPPlus's filters and failure policy, common to every handler type (reference 5.1)."""

    target: CsvList = option(
        (),
        doc="Event ids to handle, or `!ID` ids to skip (not both). Empty: every event.",
        example="!20156, !20157",
    )
    groups: CsvList = option(
        (),
        doc="Event groups to handle (any of them), `!group` to skip. Empty: every group.",
        example="failure, !debug",
    )
    usernames: CsvList = option(
        (),
        doc="Account names to handle, `!name` to skip. A positive list skips events that "
        "have no account.",
        example="acme, globex",
    )
    components: CsvList = option(
        (), doc="Component UUIDs whose events to handle, `!UUID` to skip.", example="sftp-1"
    )
    source_addresses: CsvList = option(
        (),
        doc="Peer addresses to handle, `!address` to skip (for example load-balancer probes).",
        example="!10.0.0.5",
    )
    fail_after_errors: IniInt = option(
        10,
        doc="Consecutive delivery failures after which the handler stops (event 20066); "
        "0 never stops.",
        example="0",
        ge=0,
    )
