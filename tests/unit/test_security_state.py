"""The embedded coordinator's ban state and the policy screen built on it."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

from ferryd.auth.policy import ActivePolicy, Refusal, Screen, SecurityGuard
from ferryd.cluster.coordinator import Ban
from ferryd.cluster.embedded import EmbeddedCoordinator
from ferryd.config.models import SecurityPolicyModel
from ferryd.events.bus import EventBus
from ferryd.events.event import ServerRef

SCOPE = "security-policies/P"


@pytest.fixture
async def store(tmp_path: Path) -> EmbeddedCoordinator:
    coordinator = EmbeddedCoordinator(tmp_path / "state" / "state.db3")
    await coordinator.open()
    yield coordinator  # type: ignore[misc]
    await coordinator.close()


async def test_failures_count_consecutively_within_the_window(store: EmbeddedCoordinator) -> None:
    now = 1000.0
    assert await store.count_failure(SCOPE, "10.0.0.1", now, 60) == 1
    assert await store.count_failure(SCOPE, "10.0.0.1", now + 1, 60) == 2
    assert await store.count_failure(SCOPE, "10.0.0.2", now + 1, 60) == 1, "per address"
    assert await store.count_failure("other", "10.0.0.1", now + 1, 60) == 1, "per scope"
    assert await store.count_failure(SCOPE, "10.0.0.1", now + 100, 60) == 1, "window passed"
    await store.clear_failures(SCOPE, "10.0.0.1")
    assert await store.count_failure(SCOPE, "10.0.0.1", now + 101, 60) == 1


async def test_bans_expire_persist_and_are_lifted(
    tmp_path: Path, store: EmbeddedCoordinator
) -> None:
    now = time.time()
    await store.add_ban(Ban(SCOPE, "10.0.0.1", now, now + 60, 5, "invalid password"))
    await store.add_ban(Ban(SCOPE, "10.0.0.2", now - 120, now - 60, 5, "old"))
    assert [b.address for b in await store.active_bans(now)] == ["10.0.0.1"]

    again = EmbeddedCoordinator(store.path)
    try:
        assert [b.reason for b in await again.active_bans(now)] == ["invalid password"]
        lifted = await again.remove_bans("10.0.0.1")
        assert [b.address for b in lifted] == ["10.0.0.1"]
    finally:
        await again.close()
    assert await store.active_bans(now) == []
    assert await store.remove_bans("10.0.0.1") == []


async def test_guard_bans_at_the_threshold_and_notices_bans_lifted_elsewhere(
    store: EmbeddedCoordinator,
) -> None:
    bus = EventBus(ServerRef("s", "s", "n"))
    seen: list[str] = []
    bus.tap(lambda event: seen.append(event.id))
    guard = SecurityGuard(store, bus)
    assert await guard.failed(SCOPE, "10.0.0.9", 2, 60, "invalid password") is None
    ban = await guard.failed(SCOPE, "10.0.0.9", 2, 60, "invalid password")
    assert ban is not None and ban.failures == 2
    assert guard.banned(SCOPE, "10.0.0.9") == ban
    assert guard.banned("other", "10.0.0.9") is None

    await store.remove_bans("10.0.0.9")  # as `ferryd bans remove` does from another process
    await guard.refresh()
    assert guard.banned(SCOPE, "10.0.0.9") is None
    assert "50008" in seen


async def test_failure_records_are_forgotten_when_their_window_passes(
    store: EmbeddedCoordinator,
) -> None:
    """A scan from many addresses must not grow the node's memory for ever: what a success
    would clear is kept only while the failure still counts. A success inside the window
    still clears the count, so the next failure starts again at one."""
    guard = SecurityGuard(store, EventBus(ServerRef("s", "s", "n")))
    for index in range(200):
        await guard.failed(SCOPE, f"10.1.{index // 250}.{index % 250}", 5, 0.05, "x")
    await guard.failed(SCOPE, "10.0.0.4", 5, 60, "x")
    await asyncio.sleep(0.1)
    await guard.refresh()
    assert set(guard._counted) == {(SCOPE, "10.0.0.4")}, "only the one still in its window"

    await guard.succeeded(SCOPE, "10.0.0.4")
    assert await store.count_failure(SCOPE, "10.0.0.4", time.time(), 60) == 1


async def test_zero_threshold_never_bans(store: EmbeddedCoordinator) -> None:
    guard = SecurityGuard(store, EventBus(ServerRef("s", "s", "n")))
    for _ in range(10):
        assert await guard.failed(SCOPE, "10.0.0.3", 0, 60, "x") is None


def test_policy_screen_order(store: EmbeddedCoordinator) -> None:
    model = SecurityPolicyModel.model_validate(
        {"deny_usernames": "Root", "source_ip_filter": "allow 10.1.0.0/16\n deny 10.2.0.0/16"}
    )
    policy = ActivePolicy("P", model)
    guard = SecurityGuard(store, EventBus(ServerRef("s", "s", "n")))
    assert policy.screen_login(guard, "10.1.2.3", "root") is Screen.EXEMPT
    denied = policy.screen_login(guard, "10.2.2.3", "alice")
    assert isinstance(denied, Refusal) and denied.event_id == "20005"
    named = policy.screen_login(guard, "10.3.2.3", "ROOT")
    assert isinstance(named, Refusal) and named.event_id == "20136"
    assert policy.screen_login(guard, "10.3.2.3", "alice") is Screen.CHECK
    assert policy.screen_login(guard, "not an address", "alice") is Screen.CHECK


class SlowReads(EmbeddedCoordinator):
    """The real store, whose reads of the ban list wait until the test lets them finish."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.read = asyncio.Event()
        self.release = asyncio.Event()

    async def active_bans(self, now: float) -> list[Ban]:
        found = await super().active_bans(now)
        self.read.set()
        await self.release.wait()
        return found


async def test_a_ban_made_while_a_refresh_reads_is_kept_and_not_reported_lifted(
    tmp_path: Path,
) -> None:
    store = SlowReads(tmp_path / "state.db3")
    bus = EventBus(ServerRef("s", "s", "n"))
    seen: list[str] = []
    bus.tap(lambda event: seen.append(event.id))
    guard = SecurityGuard(store, bus)
    try:
        refresh = asyncio.ensure_future(guard.refresh())
        await store.read.wait()  # the refresh has read the (empty) list and waits
        ban = await guard.failed(SCOPE, "10.0.0.7", 1, 60, "invalid password")
        store.release.set()
        await refresh
        assert guard.banned(SCOPE, "10.0.0.7") == ban
        assert "50008" not in seen
    finally:
        await store.close()


def _open_new_store(path: str, go: Any, answers: Any) -> None:
    """In its own process, as a node: wait for the common start, then open the store."""
    go.wait()

    async def main() -> str:
        coordinator = EmbeddedCoordinator(Path(path))
        try:
            await coordinator.open()
            return "ok"
        except Exception as error:
            return f"{type(error).__name__}: {error}"
        finally:
            await coordinator.close()

    answers.put(asyncio.run(main()))


def test_nodes_opening_a_new_state_file_together_all_succeed(tmp_path: Path) -> None:
    """Nodes started at the same moment on a new folder: none may fail to start with
    "database is locked" (the switch to WAL mode does not wait for the other)."""
    context = multiprocessing.get_context("fork")
    results: list[str] = []
    for trial in range(25):
        path = str(tmp_path / f"state-{trial}.db3")
        go, answers = context.Event(), context.Queue()
        nodes = [context.Process(target=_open_new_store, args=(path, go, answers)) for _ in "ab"]
        for node in nodes:
            node.start()
        time.sleep(0.05)
        go.set()
        results.extend(answers.get(timeout=30) for _ in nodes)
        for node in nodes:
            node.join()
    failures = [r for r in results if r != "ok"]
    assert not failures, failures
