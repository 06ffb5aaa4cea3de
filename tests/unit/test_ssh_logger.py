"""asyncssh's logging through ferryd's level-first logger: free when off, unchanged when on."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from asyncssh.logging import SSHLogger

from ferryd.services.ssh.logger import level_first


class Counted:
    """A log argument that counts how often it is turned into text."""

    made = 0

    def __str__(self) -> str:
        Counted.made += 1
        return "counted"


@pytest.fixture
def library() -> Iterator[logging.Logger]:
    logger = logging.getLogger("ferryd-test.asyncssh")
    logger.propagate = False
    yield logger
    logger.handlers.clear()
    logger.setLevel(logging.NOTSET)


def test_a_logger_that_is_off_builds_nothing(library: logging.Logger) -> None:
    """asyncssh turns every list argument into text before the standard library looks at
    the level; switched to the level-first class, a logger that is off does no work."""
    library.setLevel(logging.CRITICAL + 1)
    plain, quiet = SSHLogger(library), SSHLogger(library)
    level_first(quiet)
    Counted.made = 0
    plain.debug1("Sending %s", [Counted()])
    assert Counted.made == 1, "asyncssh's own logger converts even when nothing is logged"
    quiet.debug1("Sending %s", [Counted()])
    quiet.get_child("sftp", "chan=1").info("Opened %s", [Counted()])
    assert Counted.made == 1


def test_a_logger_that_is_on_says_what_asyncssh_would(
    library: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    library.setLevel(logging.DEBUG)
    library.addHandler(caplog.handler)
    plain, quiet = SSHLogger(library, context="conn=7"), SSHLogger(library, context="conn=7")
    level_first(quiet)
    for logger in (plain, quiet):
        logger.get_child("sftp").debug1("Received %s for %s", [b"open", "x"], ("host", 22))
    first, second = (record.getMessage() for record in caplog.records)
    assert first == second == "[conn=7] Received open,x for host, port 22"
