"""Active-active: two ferryd nodes on one shared folder behind a real HAProxy.

The layout is the guide's (docs/high-availability.md): HAProxy balances round robin, sends a
PROXY v2 header, and checks each node's ``/health/ready`` every second (``fall 2``); the SSH
service requires the header. Clients connect from 127.0.0.2, HAProxy from 127.0.0.1, so the
logs show whose address each node saw. What is asserted is what a partner or an
administrator would notice: where files land, what the logs say, which logins work, and how
many transfers fail when a node dies or is drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncssh
import pytest
from clients import (
    CLIENT_ADDRESS,
    Attempt,
    attempt_upload,
    connect_with_header,
    listener_open,
    listing,
    payload,
    proxy_header,
    sftp_batch,
)
from layouts import BACKEND, LOOPBACK, ActiveActive
from nodes import CONFIGURATION_REFUSED, DRAIN_DEADLINE, DRAINING, PROXY_REFUSED, Node
from tests.integration.polling import async_wait_for
from tests.integration.sshkit import account_section

pytestmark = pytest.mark.ha

LIVE_WITHIN = 3.0  # seconds for an edit of server.ini to reach every node
SIZE = 256 * 1024  # bytes per upload in the streams
WORKERS = 3  # concurrent clients in the streams
FAILURES_WITHIN = 3.0  # seconds after a kill during which failed transfers are acceptable


def report(record_property: Callable[[str, object], None], **values: object) -> None:
    """Keep a measurement in the test report (junit properties) and print it (``-s``)."""
    for name, value in values.items():
        record_property(name, value)
    print("measured: " + ", ".join(f"{name}={value}" for name, value in values.items()))


# -- (a) the real client address, shared storage ------------------------------------------


def test_uploads_through_haproxy_land_in_the_shared_folder_and_each_node_logs_the_client(
    active_active: ActiveActive,
) -> None:
    layout = active_active.start(account_section("alice"))
    expected = {}
    for number in range(4):
        name = f"report-{number}.csv"
        local = layout.root / name
        local.write_bytes(payload(name, 20_000 + number))
        expected[name] = local.read_bytes()
        done = sftp_batch(layout.key_file, LOOPBACK, layout.port, "alice", [f"put {local} {name}"])
        assert done.returncode == 0, done.stderr

    assert layout.cluster.files("alice") == expected
    for node in (layout.a, layout.b):
        (started,) = node.log.events("20181")
        assert f"as node {node.name} " in started, f"{node.log.path} is {node.name}'s own log"
        lines = node.connections()
        assert len(lines) == 2, f"round robin: each node served two of four uploads: {lines}"
        for line in lines:
            assert f"from {CLIENT_ADDRESS}:" in line, line
            assert f" via {LOOPBACK}:" in line and line.endswith("(PROXY v2)."), line


def test_a_client_that_bypasses_haproxy_is_refused(active_active: ActiveActive) -> None:
    """Only HAProxy's address may send a header, and ``required`` refuses a bare client."""
    layout = active_active.start(account_section("alice"))
    node = layout.a
    for header in (proxy_header(("198.51.100.7", 40001), (LOOPBACK, node.ssh_port)), b""):
        with socket.create_connection(
            (LOOPBACK, node.ssh_port), timeout=10, source_address=(CLIENT_ADDRESS, 0)
        ) as client:
            client.sendall(header + b"SSH-2.0-OpenSSH_9.2\r\n")
            with contextlib.suppress(ConnectionResetError):
                assert client.recv(100) == b"", "the node answered a client that bypassed HAProxy"
    assert node.process is not None
    refused = node.process.wait_for_event(node.log, PROXY_REFUSED, count=2)
    assert all(f"from {CLIENT_ADDRESS}:" in line for line in refused), refused
    assert not node.log.events("30014", "198.51.100.7"), "a forged address reached the logs"


# -- (b) configuration changes reach every node --------------------------------------------


async def logs_in(node: Node, user: str) -> bool:
    """A login straight to ``node`` with our own PROXY header (HAProxy cannot pick a node)."""
    try:
        connection = await connect_with_header(node.ssh_port, user)
    except asyncssh.PermissionDenied:
        return False
    connection.close()
    await connection.wait_closed()
    return True


async def seconds_until_login(node: Node, user: str, since: float) -> float:
    await async_wait_for(
        lambda: logs_in(node, user),
        timeout=LIVE_WITHIN,
        what=f"{user} to log in on {node.name}",
        interval=0.05,
    )
    return time.monotonic() - since


async def nodes_serving(layout: ActiveActive, user: str, attempts: int = 4) -> set[str]:
    """Log in through HAProxy a few times; the nodes that served those logins."""
    served = set()
    for _ in range(attempts):
        connection, node = await layout.connect(user)
        served.add(node)
        connection.close()
        await connection.wait_closed()
    return served


async def test_an_account_added_on_disk_logs_in_on_both_nodes_and_a_broken_edit_changes_nothing(
    active_active: ActiveActive, record_property: Callable[[str, object], None]
) -> None:
    layout = active_active.start(account_section("alice"))
    nodes = (layout.a, layout.b)
    assert not any([await logs_in(node, "bob") for node in nodes])

    layout.cluster.write(layout.ini(account_section("alice") + account_section("bob")))
    edited = time.monotonic()
    delays = await asyncio.gather(*(seconds_until_login(node, "bob", edited) for node in nodes))
    measured = {
        f"edit_to_login_{n.name}_s": round(d, 2) for n, d in zip(nodes, delays, strict=True)
    }
    report(record_property, **measured)
    assert max(delays) < LIVE_WITHIN
    assert await nodes_serving(layout, "bob") == {"node-a", "node-b"}
    assert all(node.log.count(CONFIGURATION_REFUSED) == 0 for node in nodes)

    # carol comes with a syntax error: both nodes refuse the whole file and keep serving.
    broken = layout.ini(
        account_section("alice") + account_section("bob") + account_section("carol")
    )
    broken += "\nthis line has no delimiter\n"
    layout.cluster.write(broken)
    where = f"{layout.cluster.config.ini}:{len(broken.splitlines())}: "
    for node in nodes:
        assert node.process is not None
        line = node.process.wait_for_event(node.log, CONFIGURATION_REFUSED)[0]
        assert where in line, f"the refusal names the file and line: {line}"
    for node in nodes:
        assert node.process is not None and node.process.is_running()
        assert await logs_in(node, "alice") and await logs_in(node, "bob")
        assert not await logs_in(node, "carol"), f"{node.name} applied the broken file"
    assert await nodes_serving(layout, "alice") == {"node-a", "node-b"}


# -- (c) a node dies during transfers -------------------------------------------------------


@dataclass
class Stream:
    """``WORKERS`` clients uploading in a loop through HAProxy, each file a new name."""

    layout: ActiveActive
    user: str = "alice"
    attempts: list[Attempt] = field(default_factory=list)
    stop_at: float = 0.0

    async def worker(self, number: int) -> None:
        count = 0
        while time.monotonic() < self.stop_at:
            name = f"w{number}-{count:04d}.bin"
            self.attempts.append(await attempt_upload(self.layout.port, self.user, name, SIZE))
            count += 1

    async def run(self, seconds: float, during: Callable[[], object]) -> None:
        """Run the stream for ``seconds`` while awaiting ``during()`` beside it."""
        self.stop_at = time.monotonic() + seconds
        workers = [asyncio.create_task(self.worker(n)) for n in range(WORKERS)]
        try:
            result = during()
            if asyncio.iscoroutine(result):
                await result
        finally:
            await asyncio.gather(*workers)

    @property
    def failed(self) -> list[Attempt]:
        return [attempt for attempt in self.attempts if not attempt.ok]

    def check_files(self, others: dict[str, bytes] | None = None) -> None:
        """Every file under its final name is whole; every acknowledged upload is there.
        ``others``: files uploaded besides the stream, with their content."""
        files = self.layout.cluster.files(self.user)
        for name, content in files.items():
            expected = (others or {}).get(name, payload(name, SIZE))
            assert content == expected, f"{name} is visible but not whole"
        missing = [a.name for a in self.attempts if a.ok and a.name not in files]
        assert not missing, f"acknowledged uploads missing: {missing}"


async def test_a_node_killed_during_transfers_costs_only_the_transfers_it_was_running(
    active_active: ActiveActive, record_property: Callable[[str, object], None]
) -> None:
    layout = active_active.start(account_section("alice"))
    stream = Stream(layout)
    victim = layout.a.process
    assert victim is not None
    marks: dict[str, float] = {}

    async def kill_then_watch() -> None:
        await asyncio.sleep(2.0)
        marks["kill"] = time.monotonic()
        victim.process.kill()  # SIGKILL: no drain, no goodbye
        marks["down"] = await asyncio.to_thread(layout.haproxy.wait_down, BACKEND, "node-a")

    await stream.run(6.0, kill_then_watch)
    kill = marks["kill"]
    failed = stream.failed
    after = [a for a in stream.attempts if a.started > kill + FAILURES_WITHIN]
    window = "none"
    if failed:
        first, last = min(a.started for a in failed), max(a.ended for a in failed)
        window = f"{first - kill:+.2f}..{last - kill:+.2f}"
    durations = [a.ended - a.started for a in stream.attempts if a.ok and a.started > kill]
    report(
        record_property,
        kill_attempts=len(stream.attempts),
        kill_failed=len(failed),
        kill_failed_window_s=window,
        kill_marked_down_after_s=round(marks["down"] - kill, 2),
        kill_slowest_success_after_s=round(max(durations, default=0.0), 2),
    )
    before = [a for a in stream.attempts if a.ended < kill]
    assert before and all(a.ok for a in before), [a.error for a in before if not a.ok]
    served_before = {layout.cluster.uploaded_by(a.name) for a in before}
    assert served_before == {"node-a", "node-b"}, "both nodes took part before the kill"
    for attempt in failed:
        assert attempt.started < kill + FAILURES_WITHIN, f"late failure: {attempt}"
        assert attempt.ended >= kill, f"failure before the kill: {attempt}"
    assert len(after) >= WORKERS and all(a.ok for a in after), [a.error for a in after]
    assert {layout.cluster.uploaded_by(a.name) for a in after} == {"node-b"}
    stream.check_files()
    visible = [name for name in await listing(layout.port, "alice") if name not in (".", "..")]
    assert visible == sorted(layout.cluster.files("alice")), "a client sees only whole files"


# -- (d) a node is drained during transfers -------------------------------------------------


async def test_a_drained_node_finishes_its_uploads_and_no_client_sees_an_error(
    active_active: ActiveActive, record_property: Callable[[str, object], None]
) -> None:
    layout = active_active.start(account_section("alice"))
    node = layout.a
    assert node.process is not None
    drained = node.process
    stream = Stream(layout)
    marks: dict[str, float] = {}
    statuses: list[tuple[float, int, str]] = []
    slow_files: dict[str, bytes] = {}

    async def slow_upload_on_node_a() -> bytes:
        """Open a session that HAProxy gave to node-a, then upload slowly across the drain."""
        while True:
            connection, served_by = await layout.connect("alice")
            if served_by == "node-a":
                break
            connection.close()
        data = payload("slow.bin", 40 * 16384)
        async with connection, connection.start_sftp_client() as sftp:
            async with sftp.open("slow.bin", "wb") as remote:
                marks["slow_open"] = time.monotonic()
                for offset in range(0, len(data), 16384):
                    await remote.write(data[offset : offset + 16384], offset)
                    await asyncio.sleep(0.1)  # 4 s in all: past the grace period
            marks["slow_done"] = time.monotonic()
        slow_files["slow.bin"] = data
        return data

    async def watch() -> None:
        while "exited" not in marks:
            status, body = await asyncio.to_thread(node.readiness)
            now = time.monotonic()
            statuses.append((now, status, str(body.get("status", ""))))
            if "listener_closed" not in marks and not await asyncio.to_thread(
                listener_open, node.ssh_port
            ):
                marks["listener_closed"] = now
            if "down" not in marks and layout.haproxy.state(BACKEND, "node-a").down:
                marks["down"] = now
            if not drained.is_running():
                marks["exited"] = now
            await asyncio.sleep(0.05)

    async def drain() -> None:
        deadline = time.monotonic() + 10
        slow = asyncio.create_task(slow_upload_on_node_a())
        watcher = asyncio.create_task(watch())
        while "slow_open" not in marks:
            assert time.monotonic() < deadline, "no session on node-a with an upload open"
            await asyncio.sleep(0.02)
        marks["sigterm"] = time.monotonic()
        drained.send(signal.SIGTERM)
        data = await slow
        assert layout.cluster.files("alice")["slow.bin"] == data
        marks["exit_code"] = await asyncio.to_thread(drained.wait_exit, 20.0)
        await watcher

    await stream.run(8.0, drain)
    start = marks["sigterm"]
    first_503 = next((t for t, status, _ in statuses if t > start and status == 503), None)
    report(
        record_property,
        drain_attempts=len(stream.attempts),
        drain_failed=len(stream.failed),
        drain_not_ready_after_s=round(first_503 - start, 2) if first_503 else None,
        drain_marked_down_after_s=round(marks["down"] - start, 2) if "down" in marks else None,
        drain_listener_closed_after_s=round(marks["listener_closed"] - start, 2),
        drain_slow_upload_done_after_s=round(marks["slow_done"] - start, 2),
        drain_exit_after_s=round(marks["exited"] - start, 2),
    )
    assert not stream.failed, [a.error for a in stream.failed]
    assert marks["exit_code"] == 0, drained.diagnostics()
    assert first_503 is not None and first_503 < marks["listener_closed"]
    assert {s for t, code, s in statuses if t > start and code == 503} == {"draining"}
    assert "down" in marks and marks["down"] < marks["listener_closed"], marks
    assert marks["slow_done"] > marks["listener_closed"], "the slow upload outlived the listener"
    assert node.log.count(DRAINING) == 1 and node.log.count(DRAIN_DEADLINE) == 0
    late = [a for a in stream.attempts if a.started > marks["down"]]
    assert late and {layout.cluster.uploaded_by(a.name) for a in late} == {"node-b"}
    stream.check_files(slow_files)
