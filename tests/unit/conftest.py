"""Helpers for unit tests: configuration folders written in a few lines.

Helpers beside the tests are imported by name (``from docblocks import ...``); those of the
integration tests as ``tests.integration....``, so the repository root goes on ``sys.path``
(as tests/e2e/conftest.py does).
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

BASE_INI = """\
[server]
uuid = test-server
name = test

[authentications/DEFAULT-AUTHENTICATION]
type = application
"""


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "configuration"
    folder.mkdir()
    return folder


@pytest.fixture
def write_ini(config_dir: Path) -> Callable[[str], Path]:
    """Write server.ini as BASE_INI followed by the dedented ``extra`` text."""

    def write(extra: str = "", *, base: str = BASE_INI, name: str = "server.ini") -> Path:
        path = config_dir / name
        path.write_text(base + textwrap.dedent(extra))
        return path

    return write
