"""Temporary upload files left by a crash are removed when the SSH service starts."""

from __future__ import annotations

from sshkit import SshServer, account_section

from ferryd.config.loader import node_name
from ferryd.fs.names import temp_name


def test_service_start_sweeps_this_nodes_stale_uploads_only(ssh: SshServer) -> None:
    # The account may not log in from here: its folders must be swept all the same.
    filtered = account_section("remote", options="source_ip_filter = allow 10.0.0.0/8")
    shared = ssh.root / "shared"
    inbox = ssh.home("remote") / "inbox"
    for folder in (inbox, shared):
        folder.mkdir(parents=True)
    mine = [inbox / temp_name(node_name(None), "a.csv"), shared / temp_name(node_name(None), "b")]
    theirs = inbox / temp_name("other-node", "c.csv")
    kept = inbox / ".ferryd-upload-notes.txt"
    for path in [*mine, theirs, kept]:
        path.write_bytes(b"partial")
    ssh.config.write(ssh.ini(accounts=filtered + f"virtual_folders = /shared, {shared}\n"))
    process = ssh.start()
    process.wait_until(lambda: not any(p.exists() for p in mine), "stale uploads to be swept")
    assert theirs.exists() and kept.exists()
