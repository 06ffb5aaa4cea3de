"""A lossless model of the SFTPPlus-style INI dialect.

Operators edit these files by hand and keep comments, spacing and line
endings the way they like; the server also rewrites them (for example when an
administrator changes an option).  So the document keeps every physical line
verbatim and edits replace only the lines they must.  Nothing here knows what
a section or option means.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from ferryd.ini.errors import IniSyntaxError

_BOM = "\ufeff"
_DEFAULT_INDENT = "    "
_NOT_A_LINE = "expected 'name = value', a [section] header or a comment"


@dataclass(frozen=True)
class OptionValue:
    """One option as callers see it, with where it lives for error messages."""

    name: str
    value: str
    line: int
    section: str


@dataclass(eq=False)
class _Line:
    """One physical line: its text without the ending, and the ending itself."""

    text: str
    eol: str


@dataclass(eq=False)
class _Option:
    """An option line plus its continuation lines, which always move together."""

    name: str
    value: str
    lines: list[_Line]


@dataclass(eq=False)
class _Section:
    """A header and every line up to the next header."""

    name: str
    header: _Line
    body: list[_Option | _Line]


def _split_lines(text: str) -> list[_Line]:
    """Split on LF only, so CRLF and a missing final newline survive a round trip."""
    pieces = text.split("\n")
    lines = [
        _Line(piece[:-1], "\r\n") if piece.endswith("\r") else _Line(piece, "\n")
        for piece in pieces[:-1]
    ]
    if pieces[-1]:
        lines.append(_Line(pieces[-1], ""))
    return lines


def _header_name(text: str) -> str | None:
    """Return the name of a ``[name]`` header, or None if the line is malformed."""
    close = text.find("]")
    if close <= 1 or text[close + 1 :].strip():
        return None
    return text[1:close]


def _delimiter(text: str) -> int:
    """Index of the first ``=`` or ``:``, or -1; the first one wins so values may hold both."""
    found = [index for index in (text.find("="), text.find(":")) if index >= 0]
    return min(found, default=-1)


def _is_filler(text: str) -> bool:
    """Blank and comment lines carry no data and end a multi-line value."""
    stripped = text.strip()
    return not stripped or stripped[0] in ";#"


def _check_section_name(name: str) -> None:
    """Refuse names that would not read back as the same header."""
    if not name:
        raise ValueError("section name must not be empty")
    for bad in ("]", "\n", "\r"):
        if bad in name:
            raise ValueError(f"section name {name!r} must not contain {bad!r}")


def _check_option_name(name: str) -> None:
    """Refuse names that would be read back as something else."""
    if not name:
        raise ValueError("option name must not be empty")
    for bad in ("=", ":", "\n", "\r"):
        if bad in name:
            raise ValueError(f"option name {name!r} must not contain {bad!r}")
    if name != name.strip():
        raise ValueError(f"option name {name!r} must not start or end with whitespace")
    if name[0] in "[;#":
        raise ValueError(f"option name {name!r} must not start with {name[0]!r}")


def _normalise_value(value: str) -> str:
    """Return the value to store, refusing any value that could not be read back unchanged.

    Leading newlines are dropped: the parser never produces them, as an empty
    inline part followed by continuation lines reads as just those lines.
    """
    if "\r" in value:
        raise ValueError("value must not contain a carriage return")
    value = value.lstrip("\n")
    if not value:
        return ""
    for index, line in enumerate(value.split("\n")):
        if not line.strip():
            raise ValueError("value must not contain a blank line: it would end the value")
        if line != line.strip():
            raise ValueError(
                f"value line {line!r} starts or ends with whitespace, which would be lost"
            )
        if index and line[0] in ";#":
            raise ValueError(f"value line {line!r} would be read back as a comment")
    return value


def _option_lines(option: _Option, value: str, eol: str) -> list[_Line]:
    """Render a new value keeping the option's spelling, delimiter spacing and line endings."""
    first = option.lines[0]
    if len(option.lines) > 1:
        cont = option.lines[1].text
        indent = cont[: len(cont) - len(cont.lstrip())]
        last_eol = option.lines[-1].eol
    else:
        indent, last_eol = _DEFAULT_INDENT, first.eol
    delim = _delimiter(first.text)
    after = first.text[delim + 1 :]
    prefix = first.text[: len(first.text) - len(after.lstrip())]
    if not after.strip() and prefix.endswith(first.text[delim]):
        # A bare "name =" shows no spacing after the delimiter: mirror the spacing before it.
        before = first.text[:delim]
        prefix += before[len(before.rstrip()) :] or (" " if first.text[delim] == ":" else "")
    parts = value.split("\n")
    head = prefix + parts[0] if parts[0] else prefix.rstrip()
    texts = [head] + [indent + part for part in parts[1:]]
    lines = [_Line(text, first.eol or eol) for text in texts]
    lines[-1].eol = last_eol
    return lines


class Document:
    """A parsed INI file that renders back byte for byte and supports minimal edits."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self._bom = ""
        self._preamble: list[_Line] = []
        self._sections: list[_Section] = []

    # -- parsing -----------------------------------------------------------

    @classmethod
    def parse(cls, text: str, path: str | None = None) -> Document:
        """Parse ``text``, raising IniSyntaxError at the first invalid line."""
        doc = cls(path)
        if text.startswith(_BOM):
            doc._bom, text = _BOM, text[1:]

        def fail(number: int, message: str) -> IniSyntaxError:
            return IniSyntaxError(path, number, message)

        section: _Section | None = None
        option: _Option | None = None
        section_lines: dict[str, int] = {}
        option_lines: dict[str, int] = {}
        for number, line in enumerate(_split_lines(text), start=1):
            raw = line.text
            if _is_filler(raw):
                option = None
                (section.body if section is not None else doc._preamble).append(line)
            elif raw[0].isspace():
                if option is None:
                    raise fail(
                        number,
                        "indented line without an option to continue"
                        " (continuation lines must directly follow an option line)",
                    )
                stripped = raw.strip()
                option.value = f"{option.value}\n{stripped}" if option.value else stripped
                option.lines.append(line)
            elif raw[0] == "[":
                name = _header_name(raw)
                if name is None:
                    raise fail(number, "invalid section header, expected '[name]'")
                if name in section_lines:
                    raise fail(
                        number,
                        f"duplicate section [{name}], first defined at line {section_lines[name]}",
                    )
                section_lines[name] = number
                option_lines = {}
                option = None
                section = _Section(name, line, [])
                doc._sections.append(section)
            else:
                delim = _delimiter(raw)
                if delim < 0:
                    raise fail(number, _NOT_A_LINE)
                name = raw[:delim].strip()
                if not name:
                    raise fail(number, "empty option name before the delimiter")
                if section is None:
                    raise fail(number, f"option {name!r} appears before any [section] header")
                key = name.lower()
                if key in option_lines:
                    raise fail(
                        number,
                        f"duplicate option {name!r} in [{section.name}],"
                        f" first defined at line {option_lines[key]}",
                    )
                option_lines[key] = number
                option = _Option(name, raw[delim + 1 :].strip(), [line])
                section.body.append(option)
        return doc

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, str]]) -> Document:
        """Build a fresh document with ``name = value`` lines and a blank line between sections."""
        doc = cls()
        for section, options in data.items():
            doc.add_section(section)
            seen: set[str] = set()
            for name, value in options.items():
                if name.lower() in seen:
                    raise ValueError(
                        f"duplicate option {name!r} in [{section}]"
                        " (option names are case-insensitive)"
                    )
                seen.add(name.lower())
                doc.set(section, name, value)
        return doc

    # -- reading -----------------------------------------------------------

    def render(self) -> str:
        """Return the exact text: untouched documents equal their input."""
        return self._bom + "".join(line.text + line.eol for line in self._lines())

    def sections(self) -> list[str]:
        """Header names in file order."""
        return [section.name for section in self._sections]

    def has_section(self, section: str) -> bool:
        """Whether a header with exactly this name exists."""
        return self._find_section(section) is not None

    def section_line(self, section: str) -> int:
        """1-based line of the section header; KeyError if there is none."""
        number = len(self._preamble) + 1
        for candidate in self._sections:
            if candidate.name == section:
                return number
            number += 1 + sum(
                len(node.lines) if isinstance(node, _Option) else 1 for node in candidate.body
            )
        raise KeyError(section)

    def options(self, section: str) -> list[OptionValue]:
        """Options of a section in file order; KeyError if the section is missing."""
        if not self.has_section(section):
            raise KeyError(section)
        return [value for value in self._option_values() if value.section == section]

    def get(self, section: str, option: str) -> OptionValue | None:
        """The option, looked up case-insensitively; None when missing (unlike an empty value)."""
        key = option.lower()
        for value in self._option_values():
            if value.section == section and value.name == key:
                return value
        return None

    def as_dict(self) -> dict[str, dict[str, str]]:
        """Plain data: section name -> lower-case option name -> value."""
        return {
            section.name: {
                node.name.lower(): node.value for node in section.body if isinstance(node, _Option)
            }
            for section in self._sections
        }

    # -- editing -----------------------------------------------------------

    def set(self, section: str, option: str, value: str) -> None:
        """Set an option (creating it and its section if needed), rewriting only its lines."""
        _check_section_name(section)
        _check_option_name(option)
        value = _normalise_value(value)
        with self._editing() as eol:
            target = self._find_section(section) or self._append_section(section, eol)
            existing = _find_option(target, option)
            if existing is not None:
                existing.lines = _option_lines(existing, value, eol)
                existing.value = value
                return
            first, *rest = value.split("\n")
            lines = [_Line(f"{option} = {first}" if first else f"{option} =", eol)]
            lines.extend(_Line(_DEFAULT_INDENT + part, eol) for part in rest)
            positions = [i for i, node in enumerate(target.body) if isinstance(node, _Option)]
            index = positions[-1] + 1 if positions else 0
            target.body.insert(index, _Option(option, value, lines))

    def remove_option(self, section: str, option: str) -> bool:
        """Remove an option and its continuation lines; False if it was not there."""
        target = self._find_section(section)
        existing = _find_option(target, option) if target is not None else None
        if target is None or existing is None:
            return False
        with self._editing():
            target.body.remove(existing)
        return True

    def add_section(self, section: str) -> None:
        """Append an empty section; ValueError if it exists already."""
        _check_section_name(section)
        if self.has_section(section):
            raise ValueError(f"section [{section}] already exists")
        with self._editing() as eol:
            self._append_section(section, eol)

    def remove_section(self, section: str) -> bool:
        """Remove the header and every line up to the next header; False if missing."""
        target = self._find_section(section)
        if target is None:
            return False
        with self._editing():
            self._sections.remove(target)
        return True

    # -- internals ---------------------------------------------------------

    def _lines(self) -> Iterator[_Line]:
        """Every physical line in order."""
        yield from self._preamble
        for section in self._sections:
            yield section.header
            for node in section.body:
                if isinstance(node, _Option):
                    yield from node.lines
                else:
                    yield node

    def _option_values(self) -> Iterator[OptionValue]:
        """Options with line numbers computed from the current lines, so edits never go stale."""
        number = len(self._preamble) + 1
        for section in self._sections:
            number += 1
            for node in section.body:
                if isinstance(node, _Option):
                    yield OptionValue(node.name.lower(), node.value, number, section.name)
                    number += len(node.lines)
                else:
                    number += 1

    def _find_section(self, section: str) -> _Section | None:
        return next((s for s in self._sections if s.name == section), None)

    def _dominant_eol(self) -> str:
        """The line ending most lines use, so added lines match the file's style."""
        endings = [line.eol for line in self._lines()]
        return "\r\n" if endings.count("\r\n") > endings.count("\n") else "\n"

    @contextmanager
    def _editing(self) -> Iterator[str]:
        """Let an edit treat every line as terminated, then restore a missing final newline.

        Yields the line ending to use for new lines.
        """
        eol = self._dominant_eol()
        last = next(reversed(list(self._lines())), None)
        unterminated = last is not None and not last.eol
        if last is not None and unterminated:
            last.eol = eol
        try:
            yield eol
        finally:
            if unterminated:
                new_last = next(reversed(list(self._lines())), None)
                if new_last is not None:
                    new_last.eol = ""

    def _append_section(self, section: str, eol: str) -> _Section:
        """Add a header at the end, separated from earlier content by a blank line."""
        lines = list(self._lines())
        if lines and lines[-1].text.strip():
            container = self._sections[-1].body if self._sections else self._preamble
            container.append(_Line("", eol))
        target = _Section(section, _Line(f"[{section}]", eol), [])
        self._sections.append(target)
        return target


def _find_option(section: _Section, option: str) -> _Option | None:
    """Case-insensitive lookup of an option node."""
    key = option.lower()
    return next((n for n in section.body if isinstance(n, _Option) and n.name.lower() == key), None)
