from __future__ import annotations
import asyncssh
from sshkit import account_section


async def test_smoke(ssh) -> None:
    ssh.start(accounts=account_section("alice"))
    r = ssh.sftp("alice", ["put /etc/hostname h", "ls -l", "df", "-symlink h l", "-ln h hl"])
    print(r.stdout, r.stderr, r.returncode)
    print(sorted(p.name for p in ssh.home("alice").iterdir()))
    ssh.process.wait_for_event(ssh.log, "30068", containing="/h")
    async with await ssh.connect("alice") as conn:
        async with conn.start_sftp_client() as sftp:
            print(sftp.version, sftp.limits, sftp.supports_remote_copy)
            try:
                await sftp.open("/missing")
            except asyncssh.SFTPError as e:
                print(e.code, e.reason)
    print(open(ssh.log.path).read())
