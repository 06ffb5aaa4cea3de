"""A change that could not be applied is tried again at the next reload, even with no edit:
the administrator fixes the cause (frees a port, repairs a key) and sends SIGHUP."""

from __future__ import annotations

import socket

from sshkit import PASSWORD, SshServer, account_section


async def test_a_port_change_refused_as_busy_applies_once_the_port_is_free(
    ssh: SshServer,
) -> None:
    accounts = account_section("alice")
    ssh.start(accounts=accounts)
    assert ssh.process is not None
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        failures = ssh.log.count("20158")
        ssh.config.write(ssh.ini(accounts=accounts).replace("port = 0", f"port = {busy}"))
        ssh.process.hup()
        ssh.process.wait_for_event(
            ssh.log,
            "20158",
            f"cannot listen on 127.0.0.1:{busy}: Address already in use",
            failures + 1,
        )
    # The port is free now; the file did not change.
    ssh.process.hup()
    ssh.process.wait_for_event(ssh.log, "30076", f"127.0.0.1:{busy}.")
    async with await ssh.connect("alice", password=PASSWORD, port=busy) as moved:
        assert moved.get_extra_info("peername")[1] == busy
