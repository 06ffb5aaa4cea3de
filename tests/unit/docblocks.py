"""The fenced code blocks of a documentation page, for tests that run the page's examples.

A block right after an ``<!-- e2e: NAME -->`` comment is marked: the end-to-end tests read it
by that name (see docs/high-availability.md). Unit tests import this module as ``docblocks``,
the end-to-end tests as ``tests.unit.docblocks``.
"""

from __future__ import annotations

import re
from pathlib import Path

_BLOCK = re.compile(
    r"^(?:<!-- e2e: (?P<marker>[\w./-]+) -->\n+)?```(?P<lang>[^\n]*)\n(?P<body>.*?)^```",
    flags=re.DOTALL | re.MULTILINE,
)


def doc_blocks(path: Path, lang: str | None = "ini", marker: str | None = None) -> list[str]:
    """The bodies of the page's code blocks fenced as ```LANG, in page order.

    ``lang`` None takes every language (and fences that name none). With ``marker``, only the
    blocks marked ``<!-- e2e: MARKER -->``; without, only the blocks no marker claims (on a
    page without markers: all of them).
    """
    return [
        match.group("body")
        for match in _BLOCK.finditer(path.read_text(encoding="utf-8"))
        if (lang is None or match.group("lang").strip() == lang) and match.group("marker") == marker
    ]
