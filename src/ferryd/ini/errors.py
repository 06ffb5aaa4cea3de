"""Errors raised by the INI layer.

They carry the file name and line so an operator can jump straight to the
problem; ``str(err)`` is the ``path:line: message`` form editors understand.
"""

from __future__ import annotations


class IniError(Exception):
    """Base class, so callers can catch every configuration-file problem at once."""


class IniSyntaxError(IniError):
    """The text is not valid in the dialect; reported at the first offending line."""

    def __init__(self, path: str | None, line: int, message: str) -> None:
        # Passing all fields to Exception keeps the error picklable.
        super().__init__(path, line, message)
        self.path = path
        self.line = line
        self.message = message

    def __str__(self) -> str:
        where = self.path if self.path is not None else "<string>"
        return f"{where}:{self.line}: {self.message}"


class IniFileError(IniError):
    """The file could not be read or written; no line applies."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(path, message)
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"
