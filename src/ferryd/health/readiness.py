"""What ``/health/ready`` checks: the node can serve a client now, not merely that it runs.

A load balancer or keepalived sends clients only to a ready node, so every check is about
something a client would hit: each service this node should run is listening, each folder
the configuration stores files in is writable, and each authentication backend marked
``readiness_check = yes`` accepts connections. Storage checks run on their own thread with a
deadline: a hung network filesystem makes the node not ready instead of hanging the probe.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ferryd.auth.account import member_path
from ferryd.config.configuration import Configuration
from ferryd.config.models import AccountModel, GroupModel, LocalFileHandlerModel

FOLDER_DEADLINE = 2.0
_VARIABLE = "${"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def _folder_of(text: str) -> str:
    """The fixed folder a path template writes under: up to its first variable."""
    text = text.strip()
    if _VARIABLE not in text:
        return text
    prefix = text.split(_VARIABLE, 1)[0]
    return prefix if prefix.endswith("/") else os.path.dirname(prefix)


def storage_folders(configuration: Configuration) -> list[Path]:
    """Folders clients' files and the node's records go to; one entry per folder."""
    texts: list[str] = []
    for section in configuration.of_kind("groups"):
        model = section.model
        if isinstance(model, GroupModel) and model.enabled:
            if model.home_folder_path.strip():
                texts.append(_folder_of(member_path(model.home_folder_path)))
            texts.extend(_folder_of(f.real) for f in model.virtual_folders)
    for section in configuration.of_kind("accounts"):
        model = section.model
        if isinstance(model, AccountModel) and model.enabled:
            home = model.home_folder_path
            if home is not None:
                # A fixed home may not exist before the first login: its parent must.
                fixed = _VARIABLE not in home
                texts.append(os.path.dirname(home.rstrip("/")) if fixed else _folder_of(home))
            texts.extend(_folder_of(f.real) for f in model.virtual_folders or ())
    folders = [configuration.resolve_path(t) for t in texts if t]
    for section in configuration.components_here():
        if isinstance(section.model, LocalFileHandlerModel):
            folders.append(configuration.node_path(section.model.path).parent)
    folders.append(configuration.resolve_path(configuration.server.state_database).parent)
    return list(dict.fromkeys(folders))


def _check_folder(folder: Path) -> Check:
    name = f"folder {folder}"
    try:
        if not folder.is_dir():
            return Check(name, False, "missing" if not folder.exists() else "not a folder")
    except OSError as error:
        return Check(name, False, f"cannot stat: {error.strerror or error}")
    if not os.access(folder, os.W_OK | os.X_OK):
        return Check(name, False, "not writable by ferryd")
    return Check(name, True, "writable")


class FolderChecks:
    """Runs folder checks on one dedicated thread; a check still stuck from a previous
    probe is reported as such instead of piling up more stuck threads."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ferryd-health")
        self._running: asyncio.Future[list[Check]] | None = None
        self._wanted: list[Path] = []
        self._since = 0.0

    async def run(self, folders: Iterable[Path]) -> list[Check]:
        """Checks of ``folders``; probes arriving together share one run on the thread."""
        wanted = list(folders)
        loop = asyncio.get_running_loop()
        if self._running is None or self._running.done() or self._wanted != wanted:
            if self._running is not None and not self._running.done():
                waited = time.monotonic() - self._since
                return _unanswered(wanted, f"storage did not answer for {waited:.0f} s")
            self._since = time.monotonic()
            self._wanted = wanted
            self._running = loop.run_in_executor(
                self._executor, lambda: [_check_folder(f) for f in wanted]
            )
        left = FOLDER_DEADLINE - (time.monotonic() - self._since)
        try:
            return await asyncio.wait_for(asyncio.shield(self._running), max(left, 0.0))
        except TimeoutError:
            waited = time.monotonic() - self._since
            return _unanswered(wanted, f"storage did not answer for {waited:.0f} s")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _unanswered(folders: list[Path], detail: str) -> list[Check]:
    return [Check(f"folder {f}", False, detail) for f in folders]
