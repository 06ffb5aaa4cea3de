"""Converters for the value types the dialect uses: booleans, comma lists, line lists.

They live next to the parser so every section interprets text the same way,
yet they know nothing about which option holds which type.
"""

from __future__ import annotations

from collections.abc import Sequence

_TRUE = frozenset({"yes", "true", "y", "on", "1"})
_FALSE = frozenset({"no", "false", "n", "off", "0"})


def parse_bool(text: str) -> bool:
    """Read the boolean spellings operators actually use, case-insensitively."""
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"expected a boolean (yes/no, true/false, y/n, on/off, 1/0), got {text!r}")


def parse_lines(text: str) -> list[str]:
    """Read a one-item-per-line list, ignoring blank lines and surrounding whitespace."""
    return [line.strip() for line in text.split("\n") if line.strip()]


def parse_csv(text: str) -> list[str]:
    """Read a comma list; newlines also separate items so long lists can span lines.

    Items are stripped; ``"..."`` quotes protect commas and edge whitespace,
    with ``""`` for a literal quote.  A quote inside an unquoted item is
    literal.  A trailing comma is ignored, but an empty item is an error
    because it is almost always a typo.
    """
    items: list[str] = []
    for line in text.split("\n"):
        items.extend(_parse_csv_line(line))
    return items


def _parse_csv_line(line: str) -> list[str]:
    """Parse one line of a comma list."""
    items: list[str] = []
    pos, end = 0, len(line)
    while True:
        while pos < end and line[pos].isspace():
            pos += 1
        if pos == end:
            return items  # blank line, or nothing after a trailing comma
        if line[pos] == '"':
            item, pos = _read_quoted(line, pos)
            while pos < end and line[pos].isspace():
                pos += 1
            if pos < end and line[pos] != ",":
                raise ValueError(f"unexpected text after closing quote in {line.strip()!r}")
        else:
            comma = line.find(",", pos)
            stop = end if comma < 0 else comma
            item, pos = line[pos:stop].strip(), stop
        if not item:
            raise ValueError("empty element in list")
        items.append(item)
        if pos == end:
            return items
        pos += 1  # skip the comma


def _read_quoted(line: str, start: int) -> tuple[str, int]:
    """Read a quoted item starting at ``start``; return it and the index after its closing quote."""
    chars: list[str] = []
    pos = start + 1
    while pos < len(line):
        char = line[pos]
        if char == '"':
            if line.startswith('"', pos + 1):
                chars.append('"')
                pos += 2
                continue
            return "".join(chars), pos + 1
        chars.append(char)
        pos += 1
    raise ValueError(f"unterminated quote in list element {line[start:].strip()!r}")


def format_csv(items: Sequence[str]) -> str:
    """Write items so that ``parse_csv`` reads back exactly the same list."""
    parts: list[str] = []
    for item in items:
        if not item:
            raise ValueError("empty element in list")
        if "\n" in item or "\r" in item:
            raise ValueError(f"list element {item!r} must not contain a line break")
        if "," in item or item[0] == '"' or item != item.strip():
            item = '"' + item.replace('"', '""') + '"'
        parts.append(item)
    return ", ".join(parts)
