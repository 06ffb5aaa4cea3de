"""Fixtures for the high-availability tests: several ferryd nodes, HAProxy, keepalived.

The helpers live in modules beside this file (``hakit``, ``haproxy``, ``keepalived``,
``nodes``, ``clients``, ``layouts``); the integration helpers are imported from
``tests.integration`` (the repository root is put on ``sys.path`` for that).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

import haproxy  # noqa: E402
import keepalived  # noqa: E402
from layouts import ActiveActive, ActivePassive  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "ha: high-availability tests: several ferryd nodes behind a real HAProxy, or with "
        "keepalived in network namespaces (those need root)",
    )


@pytest.fixture
def active_active(tmp_path: Path) -> Iterator[ActiveActive]:
    """The guide's active-active layout, not started (``.start(accounts)``)."""
    problem = haproxy.available()
    if problem:
        pytest.fail(problem)
    layout = ActiveActive(tmp_path)
    try:
        yield layout
    finally:
        layout.stop()


@pytest.fixture
def active_passive(tmp_path: Path) -> Iterator[ActivePassive]:
    """The guide's active-passive layout in network namespaces, not built (``.build``)."""
    problem = keepalived.available()
    if problem:
        pytest.skip(problem)
    problem = keepalived.installed()
    if problem:
        pytest.fail(problem)
    layout = ActivePassive(tmp_path)
    try:
        yield layout
    finally:
        layout.stop()
