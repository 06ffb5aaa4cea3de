"""Configuration problems: each names the file, line, section and option at fault."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    line: int
    message: str
    section: str | None = None
    option: str | None = None

    @property
    def location(self) -> str:
        """``[section] option: `` (or the part of it that applies), for messages."""
        text = f"[{self.section}] " if self.section else ""
        if self.option:
            text += f"{self.option}: "
        return text

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.location}{self.message}"


class ConfigurationError(Exception):
    """A configuration that cannot be used; ``problems`` has at least one entry."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
