"""The validated, immutable configuration a node runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ferryd.config.models import (
    COMPONENT_KINDS,
    AccountModel,
    ComponentModel,
    GroupModel,
    SectionModel,
    ServerModel,
)
from ferryd.config.variables import Template, render_identity


@dataclass(frozen=True, slots=True)
class Origin:
    path: str
    line: int


@dataclass(frozen=True, slots=True)
class Section:
    kind: str
    uuid: str
    model: SectionModel
    header: Origin
    options: Mapping[str, Origin] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.uuid)

    @property
    def title(self) -> str:
        return f"{self.kind}/{self.uuid}"


@dataclass(frozen=True, slots=True)
class Configuration:
    config_dir: Path
    node_name: str
    server: ServerModel
    sections: Mapping[tuple[str, str], Section]
    files: tuple[Path, ...]
    fingerprint: str

    def of_kind(self, kind: str) -> list[Section]:
        return [s for s in self.sections.values() if s.kind == kind]

    def components(self) -> list[Section]:
        """Component sections in start order: handlers first so they see everything after."""
        order = {kind: index for index, kind in enumerate(COMPONENT_KINDS)}
        found = [s for s in self.sections.values() if s.kind in order]
        return sorted(found, key=lambda s: order[s.kind])

    def components_here(self) -> list[Section]:
        """The component sections that run on this node (enabled and placed here), in start
        order."""
        return [
            section
            for section in self.components()
            if isinstance(section.model, ComponentModel) and section.model.runs_on(self.node_name)
        ]

    def component_model(self, key: tuple[str, str]) -> ComponentModel:
        model = self.sections[key].model
        assert isinstance(model, ComponentModel)
        return model

    def account_named(self, name: str) -> tuple[Section, AccountModel] | None:
        for section in self.of_kind("accounts"):
            model = section.model
            if isinstance(model, AccountModel) and model.name == name:
                return section, model
        return None

    def group(self, uuid: str) -> GroupModel | None:
        section = self.sections.get(("groups", uuid))
        return section.model if section and isinstance(section.model, GroupModel) else None

    def resolve_path(self, path: str | Path) -> Path:
        """Relative paths in the configuration are relative to the configuration folder."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.config_dir / candidate

    def node_path(self, template: Template) -> Path:
        """A path option that may name this node ({host.name}), rendered and resolved."""
        rendered = render_identity(
            template,
            node=self.node_name,
            server_uuid=self.server.uuid,
            server_name=self.server.name,
        )
        return self.resolve_path(rendered)
