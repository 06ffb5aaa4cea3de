"""asyncssh's logger, asking whether anything is logged before building the message.

asyncssh logs each SFTP request and reply and each SSH packet at debug level. Its logger
converts every argument (and the packet logger formats a description) before the standard
library finds that the level is off, on the path of every request. ferryd reports through
its events and turns the ``asyncssh`` logger off (``daemon._quiet_libraries``); this
subclass makes "off" cost one level check. A program embedding ferryd's service with
asyncssh's logging on still gets every message.
"""

from __future__ import annotations

from typing import Any

from asyncssh.logging import SSHLogger


class LevelFirstLogger(SSHLogger):
    """Children made by ``get_child`` (channels, SFTP sessions) are of this class too."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            super().log(level, msg, *args, **kwargs)


def level_first(logger: SSHLogger) -> None:
    """Switch ``logger`` (a connection's) to :class:`LevelFirstLogger` in place: it adds no
    state, so asyncssh's constructor and context stay as they are."""
    logger.__class__ = LevelFirstLogger
