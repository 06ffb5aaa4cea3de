from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from sshkit import PASSWORD, account_section

if TYPE_CHECKING:
    from sshkit import SshServer


def test_smoke(ssh: SshServer) -> None:
    ssh.start(accounts=account_section("alice"))

    async def go() -> None:
        async with await ssh.connect("alice", password=PASSWORD) as conn:
            async with conn.start_sftp_client() as sftp:
                print(await sftp.listdir("."))
        async with await ssh.connect("alice") as conn:
            pass
    asyncio.run(go())
    r = ssh.sftp("alice", ["ls"])
    print(r)
    print("\n".join(ssh.log.lines()))
