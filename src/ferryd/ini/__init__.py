"""The SFTPPlus-style INI dialect: lossless parsing with line numbers and minimal edits.

This layer knows nothing about what sections or options mean.
"""

from ferryd.ini.document import Document, OptionValue
from ferryd.ini.errors import IniError, IniFileError, IniSyntaxError
from ferryd.ini.files import read_document, write_atomic, write_document
from ferryd.ini.locking import (
    DEFAULT_LOCK_TIMEOUT,
    LockTimeoutError,
    StaleWriteError,
    current_version,
    edit_locked,
    lock_path,
    locked,
    read_versioned,
    save_if_unchanged,
    version_of,
)
from ferryd.ini.values import format_csv, parse_bool, parse_csv, parse_lines

__all__ = [
    "DEFAULT_LOCK_TIMEOUT",
    "Document",
    "IniError",
    "IniFileError",
    "IniSyntaxError",
    "LockTimeoutError",
    "OptionValue",
    "StaleWriteError",
    "current_version",
    "edit_locked",
    "format_csv",
    "lock_path",
    "locked",
    "parse_bool",
    "parse_csv",
    "parse_lines",
    "read_document",
    "read_versioned",
    "save_if_unchanged",
    "version_of",
    "write_atomic",
    "write_document",
]
