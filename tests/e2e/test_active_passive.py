"""Active-passive: two ferryd nodes with keepalived, clients on a virtual address.

Each node runs in its own network namespace with keepalived (the guide's keepalived.conf:
VRRP version 3, adverts every 0.1 s, a ``vrrp_script`` asking ferryd's ``/health/ready``
every second); a third namespace holds the client, an OpenSSH ``sftp`` that only knows the
virtual address. The test kills the active node, then (once it is back as the backup) drains
the other one, and measures how long the client takes to log in again on the node that took
the address over.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from clients import sftp_batch
from layouts import CLIENT_IN_NAMESPACE, GUIDE_SSH_PORT, VIRTUAL_ADDRESS, ActivePassive
from nodes import DRAINING
from tests.integration.polling import wait_for
from tests.integration.sshkit import account_section

pytestmark = pytest.mark.ha

LOGIN_AGAIN_WITHIN = 5.0  # seconds from the failure to a login served by the other node
# A login takes 0.1-0.2 s. One caught in the move of the address can hang (its packets reach
# a node that no longer holds the address and nothing answers), so it is given up after this.
LOGIN_TIMEOUT = 2.5


class Client:
    """The client namespace: ``sftp`` to the virtual address, one small upload per login."""

    def __init__(self, layout: ActivePassive, root: Path) -> None:
        self.layout = layout
        self.file = root / "probe.txt"
        self.file.write_text("probe\n")
        self.count = 0

    def login(self) -> tuple[str, str]:
        """Log in and upload; the node that served it ("" if the login failed) and errors."""
        self.count += 1
        name = f"probe-{self.count}.txt"
        done = sftp_batch(
            self.layout.key_file,
            VIRTUAL_ADDRESS,
            int(GUIDE_SSH_PORT),
            "alice",
            [f"put {self.file} {name}"],
            bind=None,
            prefix=self.layout.lab.exec_prefix("c"),
            timeout=LOGIN_TIMEOUT,
        )
        if done.returncode != 0:
            return "", done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
        node = self.layout.cluster.uploaded_by(name)
        return (node, "") if node else ("?", f"no node logged the upload of {name}")

    def until_served_by(self, node: str, since: float) -> tuple[float, int]:
        """Log in again and again until ``node`` serves; seconds since ``since``, failures.
        Failed logins are summed up, slow ones printed (start relative to ``since``)."""
        failed: list[float] = []
        while True:
            started = time.monotonic()
            served, error = self.login()
            took = time.monotonic() - started
            if took > 0.5:
                print(f"  login at {started - since:+.2f} s took {took:.2f} s: {served or error}")
            if served == node:
                if failed:
                    print(
                        f"  {len(failed)} failed logins started between {failed[0]:+.2f} s "
                        f"and {failed[-1]:+.2f} s"
                    )
                return time.monotonic() - since, len(failed)
            if error:
                failed.append(started - since)
            assert time.monotonic() - since < LOGIN_AGAIN_WITHIN, (
                f"no login served by {node} within {LOGIN_AGAIN_WITHIN} s (last: {served!r} "
                f"{error!r}); the address is on {self.layout.holders()}"
            )


def test_the_virtual_address_survives_a_dead_node_and_follows_readiness(
    active_passive: ActivePassive, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    layout = active_passive.build(account_section("alice"))
    a, b = layout.node("a"), layout.node("b")
    layout.cluster.start()
    layout.keepalived["a"].start()
    wait_for(lambda: layout.holders() == ["a"], timeout=10, what="node-a to take the address")
    layout.keepalived["b"].start().wait_entered("BACKUP")
    client = Client(layout, tmp_path)
    assert client.login() == ("node-a", "")
    assert a.log.events("30014", f"from {CLIENT_IN_NAMESPACE}:"), "ferryd sees the client"

    # Kill node-a outright (ferryd and keepalived): node-b takes the address.
    assert a.process is not None
    killed_at = time.monotonic()
    a.process.process.kill()
    layout.keepalived["a"].kill()
    kill_switch, kill_failures = client.until_served_by("node-b", killed_at)
    assert "b" in layout.holders()

    # node-a comes back: keepalived drops the address it kept, and with nopreempt node-a
    # stays the backup although its priority is higher.
    a.serve()
    a.wait_started()
    a.wait_ready()
    layout.keepalived["a"].start().wait_entered("BACKUP")
    stays_until = time.monotonic() + 0.5
    while time.monotonic() < stays_until:
        assert layout.holders() == ["b"], "node-a took the address back (nopreempt)"
        time.sleep(0.05)

    # Drain node-b with `ferryd drain`, as an administrator would: its readiness fails, its
    # keepalived gives the address up, node-a takes it. (Sessions still open on node-b are
    # cut by the move; node-b then waits up to drain_timeout for them before it exits, which
    # this test does not wait for.)
    assert b.process is not None
    drained_at = time.monotonic()
    asked = b.runner.run(
        "drain", "--config-dir", layout.cluster.config.path, "--node-name", "node-b", "--no-wait"
    )
    assert asked.returncode == 0, asked.stdout + asked.stderr
    drain_switch, drain_failures = client.until_served_by("node-a", drained_at)
    assert layout.holders() == ["a"]
    assert b.log.count(DRAINING) == 1
    layout.keepalived["b"].wait_entered("FAULT")

    print(
        f"measured: kill: login on node-b {kill_switch:.2f} s after SIGKILL "
        f"({kill_failures} failed logins); drain: login on node-a {drain_switch:.2f} s after "
        f"ferryd drain ({drain_failures} failed logins)"
    )
    record_property("ap_kill_login_on_other_node_s", round(kill_switch, 2))
    record_property("ap_kill_failed_logins", kill_failures)
    record_property("ap_drain_login_on_other_node_s", round(drain_switch, 2))
    record_property("ap_drain_failed_logins", drain_failures)
    assert kill_switch < LOGIN_AGAIN_WITHIN and drain_switch < LOGIN_AGAIN_WITHIN
