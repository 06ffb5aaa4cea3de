"""The health listener and draining, as a load balancer and an administrator see them.

``/health/live`` and ``/health/ready`` are probed over real HTTP, the node is drained with
SIGTERM and with ``ferryd drain``, and SSH clients are real asyncssh connections. Each node
runs with ``--node-name node-a``, so its pid file is ``ferryd-node-a.pid`` in the
configuration folder. Event ids: 20002 shutting down, 20010 configuration refused, 20157
component stopped, 20262 health listener, 20263 draining, 20264 drain deadline, 20265 health
listener cannot listen, 20268/20269 accepting stalled/recovered, 30015 SSH connection
closed.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from polling import async_wait_for
from sshkit import SshServer, account_section, free_port

NODE = "node-a"
LIVE = "/health/live"
READY = "/health/ready"


# -- helpers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    content_type: str

    def check(self, name: str) -> dict[str, Any]:
        """The readiness check called ``name`` (each has name, ok and detail)."""
        found = [c for c in self.body.get("checks", []) if c["name"] == name]
        assert len(found) == 1, f"no single check {name!r} in {self.body}"
        return dict(found[0])


def probe(port: int, path: str, method: str = "GET") -> Reply:
    """One request, as a load balancer sends it (no proxy from the environment)."""
    response = httpx.request(method, f"http://127.0.0.1:{port}{path}", timeout=5.0, trust_env=False)
    return Reply(response.status_code, response.json(), response.headers["content-type"])


def readiness_status(port: int, status: str) -> Reply | None:
    """The ``/health/ready`` reply if its status is ``status``, else None (for polls)."""
    reply = probe(port, READY)
    return reply if reply.body["status"] == status else None


def wait_status(ssh: SshServer, port: int, status: str) -> Reply:
    """Poll ``/health/ready`` until its status is ``status``; that reply."""
    assert ssh.process is not None
    reply = ssh.process.wait_until(lambda: readiness_status(port, status), f"status {status}")
    assert reply is not None
    return reply


def refuses(port: int) -> bool:
    """Whether a TCP connection to the port is refused (nothing listens there)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0):
            return False
    except ConnectionRefusedError:
        return True


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else listens on for the whole test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def node_ini(ssh: SshServer, server: str = "", **parts: str) -> str:
    """sshkit's server.ini with account alice and more ``[server]`` option lines."""
    text = ssh.ini(accounts=account_section("alice"), **parts)
    lines = "".join(line.strip() + "\n" for line in server.strip().splitlines())
    return text.replace("[server]\n", "[server]\n" + lines, 1)


def start(ssh: SshServer, server: str = "", **parts: str) -> int:
    """Start node-a; the health listener's port when ``server`` gives one, else 0."""
    ssh.config.write(node_ini(ssh, server, **parts))
    ssh.start("--node-name", NODE)
    return health_port(ssh) if "health_port" in server else 0


def health_port(ssh: SshServer, count: int = 1) -> int:
    """The port announced by the ``count``-th event 20262."""
    assert ssh.process is not None
    line = ssh.process.wait_for_event(ssh.log, "20262", count=count)[count - 1]
    found = re.fullmatch(rf"20262 Health listener for node {NODE} on 127\.0\.0\.1:(\d+)\.", line)
    assert found, line
    return int(found.group(1))


def pid_file(ssh: SshServer) -> Path:
    return ssh.config.path / f"ferryd-{NODE}.pid"


def position(lines: list[str], event_id: str, containing: str = "") -> int:
    """Index of the first line of ``event_id`` containing ``containing``."""
    for index, line in enumerate(lines):
        if line.split(" ", 1)[0] == event_id and containing in line:
            return index
    raise AssertionError(f"no event {event_id} {containing!r} in:\n" + "\n".join(lines))


async def exit_status(ssh: SshServer, timeout: float = 10.0) -> int:
    assert ssh.process is not None
    popen = ssh.process.process
    await async_wait_for(lambda: popen.poll() is not None, timeout=timeout, what="ferryd to exit")
    return popen.returncode


# -- /health/live and the listener --------------------------------------------------------------


def test_live_answers_json_and_anything_else_is_refused_cleanly(ssh: SshServer) -> None:
    port = start(ssh, "health_port = 0")
    assert ssh.process is not None

    live = probe(port, LIVE)
    assert live.status == 200
    assert live.content_type == "application/json"
    assert live.body["status"] == "live"
    assert live.body["node"] == NODE
    assert live.body["pid"] == ssh.process.process.pid

    unknown = probe(port, "/health/nothing")
    assert unknown.status == 404
    assert unknown.content_type == "application/json"
    assert "/health/nothing" in unknown.body["error"]

    assert probe(port, LIVE, method="POST").status == 405

    # Not HTTP at all (an SSH client pointed at the wrong port): no answer, the connection
    # is closed, and the listener keeps answering probes.
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as garbage:
        garbage.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02 not a request\r\n\r\n")
        assert garbage.recv(4096) == b""
    assert probe(port, LIVE).status == 200
    assert ssh.process.is_running()


# -- /health/ready ------------------------------------------------------------------------------


def test_ready_lists_the_configuration_the_service_and_the_storage_folders(
    ssh: SshServer,
) -> None:
    port = start(ssh, "health_port = 0")

    ready = probe(port, READY)

    assert ready.status == 200, ready.body
    assert ready.content_type == "application/json"
    assert ready.body["status"] == "ready"
    assert ready.body["node"] == NODE
    for check in ready.body["checks"]:
        assert set(check) == {"name", "ok", "detail"}, check
        assert check["ok"] is True, check
    configuration = ready.check("configuration")
    assert str(ssh.config.ini) in configuration["detail"]
    assert ready.check("services/sftp")["detail"] == f"listening on 127.0.0.1:{ssh.port}"
    assert ready.check(f"folder {ssh.homes}")["detail"] == "writable"


def test_a_missing_storage_folder_makes_the_node_not_ready_until_it_is_back(
    ssh: SshServer,
) -> None:
    port = start(ssh, "health_port = 0")
    assert ssh.process is not None
    homes, away = ssh.homes, ssh.homes.with_name("homes.away")
    assert probe(port, READY).status == 200

    homes.rename(away)
    reply = wait_status(ssh, port, "not-ready")
    assert reply.status == 503
    assert reply.check(f"folder {homes}") == {
        "name": f"folder {homes}",
        "ok": False,
        "detail": "missing",
    }
    assert reply.check("services/sftp")["ok"] is True

    away.rename(homes)
    assert wait_status(ssh, port, "ready").status == 200

    # A file where the folder should be (a mount point gone wrong): not ready either.
    homes.rename(away)
    homes.write_text("not a folder\n")
    reply = wait_status(ssh, port, "not-ready")
    assert reply.status == 503
    assert reply.check(f"folder {homes}")["detail"] == "not a folder"

    homes.unlink()
    away.rename(homes)
    assert wait_status(ssh, port, "ready").status == 200


@pytest.mark.parametrize("readiness_check", ["yes", "no"])
def test_an_http_method_checked_for_readiness_makes_a_down_backend_not_ready(
    ssh: SshServer, readiness_check: str
) -> None:
    down = free_port()  # nothing listens there
    method = f"""
        [authentications/identity]
        type = http
        url = http://127.0.0.1:{down}/login
        timeout = 2
        readiness_check = {readiness_check}
    """
    port = start(ssh, "health_port = 0", extra=method)

    reply = probe(port, READY)

    names = [check["name"] for check in reply.body["checks"]]
    if readiness_check == "yes":
        assert reply.status == 503
        assert reply.body["status"] == "not-ready"
        check = reply.check("authentications/identity")
        assert check["ok"] is False
        assert f"127.0.0.1:{down}" in check["detail"]
    else:
        assert reply.status == 200, reply.body
        assert reply.body["status"] == "ready"
        assert "authentications/identity" not in names


def test_a_refused_edit_keeps_the_node_ready_and_says_so(ssh: SshServer) -> None:
    port = start(ssh, "health_port = 0")
    assert ssh.process is not None
    good = ssh.config.ini.read_text()

    ssh.config.ini.write_text(good + "\n[groups/partners]\nthis line has no delimiter\n")
    ssh.process.wait_for_event(ssh.log, "20010", "expected 'name = value'")

    reply = probe(port, READY)
    assert reply.status == 200, reply.body
    assert reply.body["status"] == "ready"
    configuration = reply.check("configuration")
    assert configuration["ok"] is True
    assert "the last change was refused" in configuration["detail"]
    assert f"{ssh.config.ini}:" in configuration["detail"]

    ssh.config.ini.write_text(good)

    def cleared() -> bool:
        detail = probe(port, READY).check("configuration")["detail"]
        return bool(detail == f"loaded from {ssh.config.ini}")

    ssh.process.wait_until(cleared, "the refusal to leave the configuration check")
    assert probe(port, READY).status == 200


# -- draining -----------------------------------------------------------------------------------


async def test_sigterm_drains_leaves_the_balancer_then_closes_the_listener(
    ssh: SshServer,
) -> None:
    grace = 1.0
    port = start(ssh, f"health_port = 0\ndrain_grace_period = {grace:g}")
    process = ssh.process
    assert process is not None
    assert pid_file(ssh).read_text().strip() == str(process.process.pid)
    first, second = b"a" * 65536, b"b" * 65536

    async with await ssh.connect("alice") as connection:
        client_port = connection.get_extra_info("sockname")[1]
        async with connection.start_sftp_client() as sftp:
            async with sftp.open("report.csv", "wb") as upload:
                await upload.write(first)
                signalled = time.monotonic()
                process.send(signal.SIGTERM)

                draining = await async_wait_for(
                    lambda: readiness_status(port, "draining"),
                    what="status draining",
                    interval=0.02,
                )
                assert time.monotonic() - signalled < grace / 2, "readiness failed late"
                assert draining.status == 503
                assert probe(port, LIVE).status == 200, "a draining node is still alive"

                # Until the load balancer noticed, new clients are still served.
                async with (
                    await ssh.connect("alice") as late,
                    late.start_sftp_client() as late_sftp,
                ):
                    await late_sftp.listdir(".")
                assert time.monotonic() - signalled < grace

                await async_wait_for(
                    lambda: refuses(ssh.port), what="the SSH listener to close", interval=0.02
                )
                closed_after = time.monotonic() - signalled
                assert grace - 0.1 <= closed_after < grace + 2.0, closed_after
                after_close = probe(port, READY)
                assert (after_close.status, after_close.body["status"]) == (503, "draining")

                await upload.write(second)  # the session opened before the drain carries on
            assert (await sftp.stat("report.csv")).size == len(first + second)
        assert process.is_running(), "ferryd stopped while a session was still open"

    assert await exit_status(ssh) == 0, process.diagnostics()
    assert time.monotonic() - signalled < grace + 10, "the drain waited for drain_timeout"
    assert (ssh.home("alice") / "report.csv").read_bytes() == first + second
    assert not pid_file(ssh).exists()

    lines = ssh.log.lines()
    assert ssh.log.events("20263") == [
        f"20263 Draining node {NODE}: readiness fails now, listeners close in 1 seconds, "
        "open sessions have 30 seconds to finish."
    ]
    assert ssh.log.count("20264") == 0
    drained = position(lines, "20263")
    client_gone = position(lines, "30015", f"127.0.0.1:{client_port} closed")
    stopped = position(lines, "20157", "services ssh sftp stopped")
    assert drained < client_gone < stopped


async def test_sessions_still_open_at_drain_timeout_are_closed(ssh: SshServer) -> None:
    start(ssh, "health_port = 0\ndrain_grace_period = 0.5\ndrain_timeout = 1")
    assert ssh.process is not None

    connection = await ssh.connect("alice")
    try:
        client_port = connection.get_extra_info("sockname")[1]
        sftp = await connection.start_sftp_client()
        await sftp.listdir(".")
        signalled = time.monotonic()
        ssh.process.send(signal.SIGTERM)

        assert await exit_status(ssh) == 0, ssh.process.diagnostics()
        elapsed = time.monotonic() - signalled
        assert 1.4 <= elapsed < 3.5, f"exited {elapsed:.2f} s after SIGTERM, expected ~1.5 s"
        await asyncio.wait_for(connection.wait_closed(), 5.0)
    finally:
        connection.abort()

    assert ssh.log.events("20264") == ["20264 Drain deadline reached: closing 1 open sessions."]
    assert ssh.log.count("30015", f"127.0.0.1:{client_port} closed") == 1
    lines = ssh.log.lines()
    assert position(lines, "20264") < position(lines, "30015", f"127.0.0.1:{client_port}")


def test_without_a_health_listener_sigterm_skips_the_grace_period(ssh: SshServer) -> None:
    start(ssh, "drain_grace_period = 5")
    assert ssh.process is not None
    signalled = time.monotonic()

    assert ssh.process.stop() == 0, ssh.process.diagnostics()

    assert time.monotonic() - signalled < 2.0
    assert ssh.log.events("20263", "listeners close in 0 seconds")
    assert not pid_file(ssh).exists()


def test_a_connection_that_never_logs_in_does_not_hold_the_drain(ssh: SshServer) -> None:
    """A client that connected and said nothing (or stalls before its login) is not a
    session to wait for: the drain ends about 10 s after it connected, not at drain_timeout."""
    start(ssh, "drain_timeout = 60")
    assert ssh.process is not None
    with socket.create_connection(("127.0.0.1", ssh.port), timeout=5):
        ssh.process.wait_for_event(ssh.log, "30014")
        signalled = time.monotonic()
        ssh.process.send(signal.SIGTERM)
        assert ssh.process.wait_exit(timeout=20) == 0, ssh.process.diagnostics()
    assert time.monotonic() - signalled < 15.0
    assert ssh.log.count("30015", "(the service is stopping)") == 1, "the silent client was closed"


async def test_a_second_sigterm_during_the_drain_stops_at_once(ssh: SshServer) -> None:
    start(ssh, "health_port = 0\ndrain_grace_period = 5")
    process = ssh.process
    assert process is not None

    async with await ssh.connect("alice") as connection:
        client_port = connection.get_extra_info("sockname")[1]
        process.send(signal.SIGTERM)
        await async_wait_for(lambda: ssh.log.count("20263"), what="event 20263", interval=0.02)
        hurried = time.monotonic()
        process.send(signal.SIGTERM)

        assert await exit_status(ssh) == 0, process.diagnostics()
        assert time.monotonic() - hurried < 2.0, "the second signal did not skip the waiting"
        await asyncio.wait_for(connection.wait_closed(), 5.0)

    assert ssh.log.events("20264") == ["20264 Drain deadline reached: closing 1 open sessions."]
    assert ssh.log.count("30015", f"127.0.0.1:{client_port} closed") == 1


# -- ferryd drain -------------------------------------------------------------------------------


def test_ferryd_drain_stops_the_running_node(ssh: SshServer) -> None:
    start(ssh, "health_port = 0\ndrain_grace_period = 0.2")
    assert ssh.process is not None
    pid = ssh.process.process.pid

    result = ssh.ferryd.run("drain", "--config-dir", ssh.config.path, "--node-name", NODE)

    assert result.returncode == 0, result
    lines = ssh.ferryd.output_lines(result)
    assert lines[0].startswith(f"Draining node {NODE} (pid {pid}): "), lines
    assert lines[-1] == f"Node {NODE} stopped."
    assert ssh.process.wait_exit() == 0, ssh.process.diagnostics()
    assert ssh.log.events("20002", "(SIGTERM)")
    assert ssh.log.count("20263") == 1
    assert not pid_file(ssh).exists()


def test_ferryd_drain_without_a_running_node_names_the_pid_file(ssh: SshServer) -> None:
    ssh.config.write(node_ini(ssh))

    result = ssh.ferryd.run("drain", "--config-dir", ssh.config.path, "--node-name", NODE)

    assert result.returncode == 1
    assert result.stdout == ""
    assert f"no pid file {pid_file(ssh)}" in result.stderr
    assert result.stderr.startswith("ferryd drain: ")


@pytest.mark.parametrize(
    "bystander_is",
    ["sleep", "tail-of-a-ferryd-log"],
)
def test_ferryd_drain_refuses_a_pid_file_naming_another_program(
    ssh: SshServer, tmp_path: Path, bystander_is: str
) -> None:
    """The node crashed, its pid file stayed, and the pid now belongs to something else."""
    ssh.config.write(node_ini(ssh))
    if bystander_is == "sleep":
        command = ["sleep", "60"]
    else:  # an administrator following the log in another terminal
        log = tmp_path / "var" / "log" / "ferryd" / "audit.log"
        log.parent.mkdir(parents=True)
        log.touch()
        command = ["tail", "-F", str(log)]
    bystander = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pid_file(ssh).write_text(f"{bystander.pid}\n")

        result = ssh.ferryd.run("drain", "--config-dir", ssh.config.path, "--node-name", NODE)

        assert result.returncode == 1
        assert f"process {bystander.pid} named by {pid_file(ssh)} is not ferryd" in result.stderr
        with pytest.raises(subprocess.TimeoutExpired):
            bystander.wait(timeout=0.3)  # still running: it was not signalled
    finally:
        bystander.kill()
        bystander.wait()


# -- health_port --------------------------------------------------------------------------------


def test_a_busy_health_port_refuses_the_start(ssh: SshServer, busy_port: int) -> None:
    ssh.config.write(node_ini(ssh, f"health_port = {busy_port}"))

    process = ssh.ferryd.serve(ssh.config, "--node-name", NODE)

    assert process.wait_exit() == 1, process.diagnostics()
    problems = [line for line in process.stderr().splitlines() if line.strip()]
    assert len(problems) == 1, process.diagnostics()
    assert problems[0].startswith(f"{ssh.config.ini}"), problems
    assert "[server] health_port" in problems[0]
    assert f"cannot listen on 127.0.0.1:{busy_port}" in problems[0]
    assert not pid_file(ssh).exists()


def test_changing_health_port_moves_the_listener_or_keeps_it_when_busy(
    ssh: SshServer, busy_port: int
) -> None:
    first = start(ssh, "health_port = 0")
    assert ssh.process is not None
    process = ssh.process

    # Per-node values live in the override file; the node notices the change by itself.
    second = free_port()
    ssh.config.write_override(f"[server]\nhealth_port = {second}\n")
    assert health_port(ssh, count=2) == second
    assert probe(second, LIVE).status == 200
    process.wait_until(lambda: refuses(first), "the old health port to close")

    ssh.config.write_override(f"[server]\nhealth_port = {busy_port}\n")
    refused = process.wait_for_event(ssh.log, "20265")[-1]
    assert f"127.0.0.1:{busy_port}" in refused
    assert probe(second, LIVE).status == 200
    assert probe(second, READY).status == 200
    assert ssh.log.count("20262") == 2


def test_an_unusable_health_address_on_the_same_port_keeps_the_listener(ssh: SshServer) -> None:
    """The port must be freed to bind another address on it; if that bind fails, the node
    answers where it did before (a balancer must not see a healthy node vanish)."""
    port = free_port()
    start(ssh, f"health_port = {port}")
    assert ssh.process is not None
    ssh.config.write_override(f"[server]\nhealth_address = 192.0.2.1\nhealth_port = {port}\n")
    refused = ssh.process.wait_for_event(ssh.log, "20265")[-1]
    assert f"192.0.2.1:{port}" in refused
    assert ssh.process.wait_until(lambda: probe(port, READY).status == 200, "readiness again")


def test_probes_arriving_together_all_get_the_answer(ssh: SshServer) -> None:
    """HAProxy and a monitoring system may ask in the same instant: both get 200."""
    port = start(ssh, "health_port = 0")

    async def together() -> list[int]:
        async with httpx.AsyncClient(trust_env=False, timeout=5.0) as client:
            url = f"http://127.0.0.1:{port}{READY}"
            answers = await asyncio.gather(*(client.get(url) for _ in range(8)))
        return [answer.status_code for answer in answers]

    for _ in range(5):
        assert asyncio.run(together()) == [200] * 8


def test_head_requests_get_the_status_without_a_body(ssh: SshServer) -> None:
    """`option httpchk HEAD /health/ready` is a common HAProxy setting."""
    port = start(ssh, "health_port = 0")
    response = httpx.head(f"http://127.0.0.1:{port}{READY}", timeout=5.0, trust_env=False)
    assert response.status_code == 200
    assert response.content == b""
    assert probe(port, LIVE).status == 200, "the listener still answers"


# -- out of file descriptors ----------------------------------------------------------------------


def test_out_of_descriptors_is_reported_once_and_accepting_resumes_when_they_are_back(
    ssh: SshServer,
) -> None:
    port = start(ssh, "health_port = 0")
    assert ssh.process is not None
    pid = ssh.process.process.pid
    limits = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    opened: list[socket.socket] = []
    in_use = len(os.listdir(f"/proc/{pid}/fd"))
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (in_use + 3, limits[1]))
    try:
        for _ in range(8):
            opened.append(socket.create_connection(("127.0.0.1", ssh.port), timeout=5.0))
        stalled = ssh.wait_event("20268")
        assert stalled == (
            f"20268 SSH service sftp cannot accept connections on 127.0.0.1:{ssh.port}:"
            " Too many open files"
        )
        # The health listener shares the limit: a balancer's probe fails, the node leaves
        # the pool until it can serve again.
        with pytest.raises(httpx.HTTPError):
            probe(port, READY)
        time.sleep(0.5)  # five retries
        assert ssh.log.count("20268") == 1, "said once, not at every retry"
        assert ssh.log.count("20269") == 0

        # The connections go away: the ones waiting in the queue are accepted again.
        for sock in opened:
            sock.close()
        opened.clear()
        recovered = ssh.wait_event("20269")
        assert re.fullmatch(
            rf"20269 SSH service sftp accepts connections again on 127\.0\.0\.1:{ssh.port}"
            r" after \d+\.\d seconds\.",
            recovered,
        ), recovered
        assert ssh.log.count("20268") == 1
    finally:
        for sock in opened:
            sock.close()
        resource.prlimit(pid, resource.RLIMIT_NOFILE, limits)
    assert wait_status(ssh, port, "ready").status == 200
    result = ssh.sftp("alice", ["pwd"])
    assert result.returncode == 0, result.stderr
    assert "Remote working directory: /" in result.stdout
