"""Read a configuration folder into a validated :class:`Configuration`, or every problem in it.

``server.ini`` is read first, then ``server.override.ini`` (optional) and any node-local
override files, each replacing single options of the same section and possibly adding
sections. Validation collects every problem it can, so ``ferryd check`` shows them all at once.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ferryd.config.configuration import Configuration, Origin, Section
from ferryd.config.models import (
    DEFAULT_GROUP,
    DEFAULT_SECURITY_POLICY,
    FUTURE_KINDS,
    KNOWN_KINDS,
    MODELS,
    TYPED_KINDS,
    AccountModel,
    AdministratorModel,
    GroupModel,
    SectionModel,
    ServerModel,
    types_of,
)
from ferryd.config.models.security import shipped_security_policy
from ferryd.config.problems import ConfigurationError, Problem
from ferryd.ini import Document, IniFileError, IniSyntaxError, read_document

MAIN_FILE = "server.ini"
OVERRIDE_FILE = "server.override.ini"
NODE_NAME_VARIABLE = "FERRYD_NODE_NAME"
FORBIDDEN_UUID_CHARACTERS = "/|"


def node_name(explicit: str | None = None) -> str:
    """``--node-name``, else ``$FERRYD_NODE_NAME``, else the host name."""
    return explicit or os.environ.get(NODE_NAME_VARIABLE) or socket.gethostname()


@dataclass
class _Merged:
    """One section after overrides: each option's value with the file and line it came from."""

    name: str
    header: Origin
    options: dict[str, tuple[str, Origin]] = field(default_factory=dict)


def _read(path: Path, problems: list[Problem]) -> Document | None:
    try:
        return read_document(path)
    except IniSyntaxError as error:
        problems.append(Problem(str(path), error.line, error.message))
    except IniFileError as error:
        problems.append(Problem(str(path), 0, error.message))
    return None


def _merge(documents: Iterable[tuple[Path, Document]]) -> dict[str, _Merged]:
    merged: dict[str, _Merged] = {}
    for path, document in documents:
        for name in document.sections():
            header = Origin(str(path), document.section_line(name))
            target = merged.setdefault(name, _Merged(name, header))
            for option in document.options(name):
                target.options[option.name] = (option.value, Origin(str(path), option.line))
    return merged


def _pydantic_problems(error: ValidationError, section: _Merged) -> list[Problem]:
    problems = []
    for item in error.errors():
        option = str(item["loc"][0]) if item["loc"] else None
        origin = section.options[option][1] if option in section.options else section.header
        if item["type"] == "extra_forbidden":
            message = "unknown option"
        elif item["type"] == "missing":
            message = "missing required option"
        elif item["type"] == "literal_error":
            message = f"unexpected value {item['input']!r}"
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
        problems.append(Problem(origin.path, origin.line, message, section.name, option))
    return problems


def _model_for(section: _Merged, kind: str) -> type[SectionModel] | Problem:
    if kind in FUTURE_KINDS:
        return Problem(
            section.header.path,
            section.header.line,
            f"ferryd does not implement [{kind}/...] sections yet",
            section.name,
        )
    if kind not in KNOWN_KINDS:
        known = ", ".join(sorted(KNOWN_KINDS | FUTURE_KINDS))
        return Problem(
            section.header.path,
            section.header.line,
            f"unknown section kind {kind!r}; expected [server] or [KIND/UUID] with KIND one of: "
            f"{known}",
            section.name,
        )
    if kind not in TYPED_KINDS:
        return MODELS[(kind, "")]
    default = "application" if kind == "accounts" else None
    raw = section.options.get("type")
    type_name = raw[0].strip().lower() if raw else default
    origin = raw[1] if raw else section.header
    if type_name is None or not type_name:
        return Problem(origin.path, origin.line, "missing required option", section.name, "type")
    model = MODELS.get((kind, type_name))
    if model is None:
        choices = ", ".join(types_of(kind)) or "none yet"
        return Problem(
            origin.path,
            origin.line,
            f"unknown type {type_name!r} for {kind}; ferryd supports: {choices}",
            section.name,
            "type",
        )
    return model


def _validate_section(
    section: _Merged, model: type[SectionModel], problems: list[Problem]
) -> SectionModel | None:
    values: dict[str, Any] = {name: value for name, (value, _) in section.options.items()}
    if "type" in values:
        values["type"] = values["type"].strip().lower()
    try:
        return model.model_validate(values)
    except ValidationError as error:
        problems.extend(_pydantic_problems(error, section))
    return None


def _split_name(section: _Merged) -> tuple[str, str] | Problem:
    if section.name == "server":
        return ("server", "")
    kind, slash, uuid = section.name.partition("/")
    if not slash or not kind or not uuid.strip():
        return Problem(
            section.header.path,
            section.header.line,
            "expected [server] or [KIND/UUID], for example [accounts/7d1c5a0e]",
            section.name,
        )
    if any(c in uuid for c in FORBIDDEN_UUID_CHARACTERS) or uuid != uuid.strip():
        return Problem(
            section.header.path,
            section.header.line,
            "a UUID must not contain '/', '|' or surrounding blanks",
            section.name,
        )
    return (kind, uuid)


def _cross_check(
    server: ServerModel,
    sections: Mapping[tuple[str, str], Section],
    origins: Mapping[str, _Merged],
    problems: list[Problem],
) -> None:
    """References between sections: group names, authentication lists, unique login names."""

    def where(section_name: str, option: str) -> Origin:
        merged = origins[section_name]
        return merged.options[option][1] if option in merged.options else merged.header

    def missing(title: str, option: str, kind: str, uuids: Iterable[str]) -> None:
        for uuid in uuids:
            if (kind, uuid) not in sections:
                origin = where(title, option)
                message = f"no [{kind}/{uuid}] section is defined"
                problems.append(Problem(origin.path, origin.line, message, title, option))

    named: list[tuple[str, SectionModel]] = [(s.title, s.model) for s in sections.values()]
    if "server" in origins:
        named.insert(0, ("server", server))
    for title, model in named:
        for option, kind, uuids in model.references():
            missing(title, option, kind, uuids)
    seen: dict[tuple[str, str], str] = {}
    for section in sections.values():
        model = section.model
        if isinstance(model, AccountModel | AdministratorModel):
            key = (section.kind, model.name)
            if key in seen:
                origin = where(section.title, "name")
                problems.append(
                    Problem(
                        origin.path,
                        origin.line,
                        f"name {model.name!r} is already used by [{seen[key]}]",
                        section.title,
                        "name",
                    )
                )
            seen.setdefault(key, section.title)


IDENTITY_KINDS = ("accounts", "groups")


def _validated(
    merged: Mapping[str, _Merged], problems: list[Problem], kinds: Iterable[str] | None = None
) -> tuple[ServerModel, dict[tuple[str, str], Section]]:
    """Validate every section, or only those of ``kinds`` (others are ignored, unchecked)."""
    server = ServerModel()
    sections: dict[tuple[str, str], Section] = {}
    wanted = None if kinds is None else frozenset(kinds)
    for section in merged.values():
        split = _split_name(section)
        if isinstance(split, Problem):
            problems.append(split)
            continue
        kind, uuid = split
        if wanted is not None and kind not in wanted:
            continue
        model_class: type[SectionModel] | Problem = (
            ServerModel if kind == "server" else _model_for(section, kind)
        )
        if isinstance(model_class, Problem):
            problems.append(model_class)
            continue
        model = _validate_section(section, model_class, problems)
        if model is None:
            continue
        if isinstance(model, ServerModel):
            server = model
            continue
        options = {name: origin for name, (_, origin) in section.options.items()}
        sections[(kind, uuid)] = Section(kind, uuid, model, section.header, options)
    return server, sections


def _fingerprint(documents: Iterable[tuple[Path, Document | None]]) -> str:
    digest = hashlib.sha256()
    for path, document in documents:
        digest.update(str(path).encode() + b"\0")
        digest.update(document.render().encode() if document else b"")
    return digest.hexdigest()


def load_identities(path: str | os.PathLike[str]) -> tuple[dict[tuple[str, str], Section], str]:
    """The ``[accounts/...]`` and ``[groups/...]`` sections of a ``local-file`` method's file,
    and its fingerprint; other sections are ignored. Raises ConfigurationError.

    Accounts may name only groups of the same file; one naming no group uses DEFAULT_GROUP,
    from the file when it defines one, else from the main configuration.
    """
    file = Path(path).absolute()
    problems: list[Problem] = []
    document = _read(file, problems)
    if document is None:
        raise ConfigurationError(problems)
    merged = _merge([(file, document)])
    _, sections = _validated(merged, problems, IDENTITY_KINDS)
    if not problems:
        names = {s.title for s in sections.values()}
        checked = dict(sections)  # DEFAULT_GROUP may come from the main configuration
        checked.setdefault(
            ("groups", DEFAULT_GROUP),
            Section("groups", DEFAULT_GROUP, GroupModel(name=DEFAULT_GROUP), Origin(str(file), 0)),
        )
        _cross_check(
            ServerModel(), checked, {n: m for n, m in merged.items() if n in names}, problems
        )
    if problems:
        raise ConfigurationError(problems)
    return sections, _fingerprint([(file, document)])


def load_configuration(
    config_dir: str | os.PathLike[str],
    *,
    node: str | None = None,
    overrides: Sequence[str | os.PathLike[str]] = (),
) -> Configuration:
    """Raises ConfigurationError listing every problem found."""
    folder = Path(config_dir).absolute()
    problems: list[Problem] = []
    files = [folder / MAIN_FILE]
    if (folder / OVERRIDE_FILE).exists():
        files.append(folder / OVERRIDE_FILE)
    files.extend(Path(p).absolute() for p in overrides)
    documents = [(path, _read(path, problems)) for path in files]
    if problems:
        raise ConfigurationError(problems)
    merged = _merge((path, doc) for path, doc in documents if doc is not None)

    server, sections = _validated(merged, problems)

    if ("groups", DEFAULT_GROUP) not in sections:
        origin = Origin(str(files[0]), 0)
        sections[("groups", DEFAULT_GROUP)] = Section(
            "groups", DEFAULT_GROUP, GroupModel(name=DEFAULT_GROUP), origin
        )
    if ("security-policies", DEFAULT_SECURITY_POLICY) not in sections:
        sections[("security-policies", DEFAULT_SECURITY_POLICY)] = Section(
            "security-policies",
            DEFAULT_SECURITY_POLICY,
            shipped_security_policy(),
            Origin(str(files[0]), 0),
        )
    if not problems:
        _cross_check(server, sections, merged, problems)
    if problems:
        raise ConfigurationError(problems)

    return Configuration(
        config_dir=folder,
        node_name=node_name(node),
        server=server,
        sections=sections,
        files=tuple(files),
        fingerprint=_fingerprint(documents),
    )
