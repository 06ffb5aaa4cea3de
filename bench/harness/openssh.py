"""OpenSSH's own sshd + sftp-server, configured for the benchmark in a private folder."""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

from harness.server import Server, free_port, run_checked
from harness.sysuser import Account
from harness.workspace import Workspace

SSHD = "/usr/sbin/sshd"
SFTP_SERVER = "/usr/lib/openssh/sftp-server"


def sshd_config(port: int, host_key: Path, authorized_keys: Path, passwords: bool) -> str:
    """A self-contained sshd_config: the real sftp-server binary, no PAM.

    Passwords are checked by sshd itself against /etc/shadow (``UsePAM no``), so the hash and
    its cost are exactly the ones the harness stored. MaxStartups is raised because the
    concurrency and memory cases open 50 to 200 connections at once, which the default
    (10:30:100) would drop at random. StrictModes is off because the temporary folder's
    permissions are not sshd's business here.
    """
    return "\n".join(
        [
            "ListenAddress 127.0.0.1",
            f"Port {port}",
            f"HostKey {host_key}",
            f"AuthorizedKeysFile {authorized_keys}",
            "PubkeyAuthentication yes",
            f"PasswordAuthentication {'yes' if passwords else 'no'}",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            "MaxStartups 1000",
            "PidFile none",
            "UseDNS no",
            "LogLevel ERROR",
            f"Subsystem sftp {SFTP_SERVER}",
            "",
        ]
    )


def share_with(account: Account, folder: Path, authorized_keys: Path, data: Path) -> None:
    """Let the session user read its authorized keys (sshd reads them as that user) and
    write the benchmark folder; the rest of the work folder stays private."""
    if account.user is None:
        return
    entry = pwd.getpwnam(account.user)
    folder.parent.chmod(0o711)
    folder.chmod(0o755)
    authorized_keys.chmod(0o644)
    os.chown(data, entry.pw_uid, entry.pw_gid)


def openssh_server(workspace: Workspace, account: Account) -> Server:
    """sshd in the foreground with its own host key and config; sessions run as ``account``.

    With a system account (as root) both key and password logins use it; otherwise key
    logins use the current user and password logins are off.
    """
    folder = workspace.root / "openssh"
    folder.mkdir()
    host_key = folder / "ssh_host_ed25519_key"
    run_checked(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key])
    authorized_keys = folder / "authorized_keys"
    shutil.copyfile(workspace.key.with_suffix(".pub"), authorized_keys)
    local_root = workspace.root / "openssh-data"
    local_root.mkdir()
    share_with(account, folder, authorized_keys, local_root)
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(sshd_config(port, host_key, authorized_keys, account.user is not None))
    # Privilege separation folder: a fresh machine (or a reboot, /run is a tmpfs) has none,
    # and even the syntax check refuses to run without it.
    Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    run_checked([SSHD, "-t", "-f", config])
    return Server(
        name="openssh",
        command=[SSHD, "-D", "-e", "-f", str(config)],
        port=port,
        user=account.login,
        remote_root=str(local_root),
        local_root=local_root,
        log=folder / "sshd.log",
        password_user=account.user,
    )
