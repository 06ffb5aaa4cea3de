"""The SFTPPlus-style INI dialect: lossless parsing with line numbers and minimal edits.

This layer knows nothing about what sections or options mean.
"""

from ferryd.ini.document import Document, OptionValue
from ferryd.ini.errors import IniError, IniFileError, IniSyntaxError
from ferryd.ini.files import read_document, write_atomic, write_document
from ferryd.ini.values import format_csv, parse_bool, parse_csv, parse_lines

__all__ = [
    "Document",
    "IniError",
    "IniFileError",
    "IniSyntaxError",
    "OptionValue",
    "format_csv",
    "parse_bool",
    "parse_csv",
    "parse_lines",
    "read_document",
    "write_atomic",
    "write_document",
]
